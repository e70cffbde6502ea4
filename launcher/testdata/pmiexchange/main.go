// Command pmiexchange is a rank that bootstraps through the launcher's PMI
// server as a real rank does: it puts a card, waits in the barrier and
// reads every other rank's card. It prints "env ..." and "where ..." with
// the job variables and "rank R ok: N cards" on success.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gorun-hpc/gorun/internal/pmi"
)

func main() {
	abortRank := flag.Int("abort-rank", -1, "this rank calls PMI abort with -code instead")
	code := flag.Int("code", 7, "exit code for -abort-rank")
	flag.Parse()
	if err := run(*abortRank, *code); err != nil {
		fmt.Fprintln(os.Stderr, "pmiexchange:", err)
		os.Exit(1)
	}
}

// connect joins as rank does: a rank started on another host reads the job key from the
// first line of its standard input and proves it to gorun's TCP PMI server.
func connect() (*pmi.Client, error) {
	key, err := pmi.JobKey(os.Getenv, os.Stdin)
	if err != nil {
		return nil, err
	}
	if os.Getenv("GORUN_JOB_KEY") == "stdin" {
		fmt.Printf("stdin key bytes=%d\n", len(key))
	}
	return pmi.ConnectWithKey(os.Getenv, key)
}

func run(abortRank, code int) error {
	fmt.Printf("env rank=%s size=%s fd=%s jobid=%s key=%s extra=%s inherited=%s pmi_port=%s\n",
		os.Getenv("PMI_RANK"), os.Getenv("PMI_SIZE"), os.Getenv("PMI_FD"), os.Getenv("GORUN_JOBID"),
		os.Getenv("GORUN_JOB_KEY"), os.Getenv("GORUN_TEST_EXTRA"), os.Getenv("GORUN_TEST_INHERITED"),
		os.Getenv("PMI_PORT"))
	fmt.Printf("where rank=%s host=%s local=%s/%s watch=%v\n", os.Getenv("PMI_RANK"),
		os.Getenv("GORUN_TEST_HOST"), os.Getenv("GORUN_LOCAL_RANK"), os.Getenv("GORUN_LOCAL_SIZE"),
		os.Getenv("GORUN_WATCH") != "")
	c, err := connect()
	if err != nil {
		return err
	}
	if c.Rank() == abortRank {
		if err := c.Abort(code, "rank gives up"); err != nil {
			return err
		}
		time.Sleep(time.Hour) // the launcher ends us
	}
	card := fmt.Sprintf("pid=%d", os.Getpid())
	if err := c.Put(fmt.Sprintf("card-%d", c.Rank()), card); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	for r := 0; r < c.Size(); r++ {
		v, err := c.Get(fmt.Sprintf("card-%d", r))
		if err != nil {
			return err
		}
		if r == c.Rank() && v != card {
			return fmt.Errorf("own card %q, want %q", v, card)
		}
	}
	if _, err := c.Get("no-such-card"); !errors.Is(err, pmi.ErrNotFound) {
		return fmt.Errorf("missing key: %v", err)
	}
	mapping, err := c.Get("PMI_process_mapping")
	if err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	fmt.Printf("rank %d ok: %d cards, mapping %s\n", c.Rank(), c.Size(), mapping)
	return c.Finalize()
}
