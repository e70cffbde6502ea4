// Command cat copies stdin to stdout on rank 0; other ranks report what
// their stdin held.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	rank := os.Getenv("PMI_RANK")
	if rank == "0" {
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	b, err := io.ReadAll(os.Stdin)
	fmt.Fprintf(os.Stderr, "rank %s stdin: %d bytes, %v\n", rank, len(b), err)
}
