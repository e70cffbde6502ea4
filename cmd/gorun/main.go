// Command gorun starts N ranks of a program and connects them:
//
//	gorun -n 4 ./examples/pi
//
// See "gorun --help" for the flags. The work is done by package launcher;
// this command parses the command line (cli.go), turns SIGINT and SIGTERM
// into cancellation, and maps the job's outcome to an exit status.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr))
}
