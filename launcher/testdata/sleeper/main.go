// Command sleeper is a rank that announces its pid ("pid RANK PID" on
// stdout), then sleeps (for -live, or until it is killed), or fails on
// request.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/internal/pmi"
)

func main() {
	failRank := flag.Int("fail-rank", -1, "this rank exits with -code after -after")
	code := flag.Int("code", 3, "exit status of -fail-rank")
	after := flag.Duration("after", 50*time.Millisecond, "when -fail-rank fails")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM")
	live := flag.Duration("live", time.Hour, "how long the other ranks sleep before exiting 0")
	reportTerm := flag.Bool("report-term", false, "on SIGTERM print \"rank R got SIGTERM\" and exit 0")
	meet := flag.Bool("meet", false, "after announcing the pid, wait in a PMI barrier for every rank to have announced its own")
	flag.Parse()
	rank := os.Getenv("PMI_RANK")
	switch {
	case *ignoreTerm:
		signal.Ignore(syscall.SIGTERM)
	case *reportTerm:
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		go func() {
			<-c
			fmt.Printf("rank %s got SIGTERM\n", rank)
			os.Exit(0)
		}()
	}
	fmt.Printf("pid %s %d\n", rank, os.Getpid())
	if *meet {
		// A loaded machine may start some ranks late; a failure before they announce
		// themselves would race with the test reading their pids.
		key, err := pmi.JobKey(os.Getenv, os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		c, err := pmi.ConnectWithKey(os.Getenv, key)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := c.Barrier(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	if fmt.Sprint(*failRank) == rank {
		time.Sleep(*after)
		os.Exit(*code)
	}
	time.Sleep(*live)
}
