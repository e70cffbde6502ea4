// Package rankprog is the frame of the rank programs that comm's end-to-end tests start as
// jobs: `PROG MODE` joins the job, runs MODE's checks on every rank, closes, and has rank 0
// print "PROG MODE ok on N ranks". A wrong result ends the rank with a "FAIL: ..." line on
// stderr and exit status 1, which the launcher turns into the job's failure.
package rankprog

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gorun-hpc/gorun/comm"
)

// Main runs the mode named by the first argument. With E2E_NODES=a,b,... set, rank r first
// takes node name r mod len as GORUN_NODE, so that one machine holds several "nodes".
func Main(prog string, modes map[string]func(*comm.Comm)) {
	if len(os.Args) < 2 {
		Fail("usage: %s MODE", prog)
	}
	f, ok := modes[os.Args[1]]
	if !ok {
		Fail("unknown mode %q", os.Args[1])
	}
	if m := os.Getenv("E2E_NODES"); m != "" {
		names := strings.Split(m, ",")
		r, _ := strconv.Atoi(os.Getenv("PMI_RANK"))
		os.Setenv("GORUN_NODE", names[r%len(names)])
	}
	world, err := comm.Init()
	if err != nil {
		Fail("init: %v", err)
	}
	f(world)
	if err := world.Close(); err != nil {
		Fail("close: %v", err)
	}
	if world.Rank() == 0 {
		fmt.Println(prog, os.Args[1], "ok on", world.Size(), "ranks")
	}
}

// Fail reports a wrong result and ends the rank.
func Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

// Check fails with what (formatted with args) if err is not nil.
func Check(err error, what string, args ...any) {
	if err != nil {
		Fail("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
