// Command cluster is the rank program of comm's multi-host tests (cluster_test.go):
//
//	cluster hang     every rank joins, prints "ready RANK PID", then waits (10 minutes at most)
//	                 for the launcher to end it
//	cluster guard    the intruder check: rank 1 joins late (GUARD_DELAY), so that rank 0 sits
//	                 in the start-up barrier with its TCP listener open while the test connects
//	                 to it without the job key; rank 0 then waits for a line on stdin (the test
//	                 is done), and every rank checks that nothing arrived that no rank sent
package main

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

func main() {
	if len(os.Args) != 2 {
		fail("usage: cluster hang|guard")
	}
	mode := os.Args[1]
	if mode == "guard" && os.Getenv("PMI_RANK") == "1" {
		if d, err := time.ParseDuration(os.Getenv("GUARD_DELAY")); err == nil {
			time.Sleep(d)
		}
	}
	world, err := comm.Init()
	if err != nil {
		fail("init: %v", err)
	}
	switch mode {
	case "hang":
		fmt.Printf("ready %d %d\n", world.Rank(), os.Getpid())
		time.Sleep(10 * time.Minute)
		fail("still running after 10 minutes")
	case "guard":
		guard(world)
	default:
		fail("unknown mode %q", mode)
	}
	if err := world.Close(); err != nil {
		fail("close: %v", err)
	}
}

// guard: after the intruder has come and gone, no message may be waiting anywhere, and the
// real ranks still talk.
func guard(c *comm.Comm) {
	if c.Rank() == 0 {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fail("read stdin: %v", err)
		}
	}
	check(c.Barrier())
	if ok, st, err := comm.Iprobe(c, comm.AnySource, comm.AnyTag); err != nil || ok {
		fail("rank %d: a message is waiting (%v, %+v, %v): the intruder's?", c.Rank(), ok, st, err)
	}
	check(c.Barrier())
	// A ring exchange over the real connections.
	n, me := c.Size(), c.Rank()
	got := []int64{-1}
	_, err := comm.Sendrecv(c, []int64{int64(me)}, (me+1)%n, 5, got, (me+n-1)%n, 5)
	check(err)
	if got[0] != int64((me+n-1)%n) {
		fail("rank %d got %d from its left neighbour", me, got[0])
	}
	check(c.Barrier())
	if me == 0 {
		fmt.Printf("guard: nothing delivered from outside; %d ranks still talk\n", n)
	}
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}
