// Command lines prints -n numbered lines to stdout and to stderr, each
// written in two pieces so that only line-wise forwarding keeps them whole,
// then a last line without a newline.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	n := flag.Int("n", 100, "lines per stream")
	flag.Parse()
	rank := os.Getenv("PMI_RANK")
	for i := 0; i < *n; i++ {
		for _, f := range []*os.File{os.Stdout, os.Stderr} {
			fmt.Fprintf(f, "rank %s %s line", rank, f.Name())
			fmt.Fprintf(f, " %d of %d\n", i, *n)
		}
	}
	fmt.Fprintf(os.Stdout, "rank %s %s tail", rank, os.Stdout.Name())
	fmt.Fprintf(os.Stderr, "rank %s %s tail", rank, os.Stderr.Name())
}
