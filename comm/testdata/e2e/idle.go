package main

import (
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// idleWait is how long rank 0 keeps the others waiting, in each of the two waits.
const idleWait = time.Second

// idleCPUShare bounds the CPU a waiting rank's process may use, as a share of the wait: a
// rank spins only briefly (10ms) before it sleeps on its doorbell, and while asleep it wakes
// only for liveness checks (every 50ms, microseconds each): about 1%. A rank that spun
// again after every check would use a sixth.
const idleCPUShare = 0.08

// idle: rank 0 sleeps while every other rank waits for it, first in a Recv, then in a
// Barrier. A waiting rank fails if its process used more CPU than idleCPUShare of the wait.
func idle(c *comm.Comm) {
	buf := []byte{0}
	if c.Rank() == 0 {
		time.Sleep(idleWait)
		for r := 1; r < c.Size(); r++ {
			check(comm.Send(c, buf, r, 1), "send to %d", r)
		}
		time.Sleep(idleWait)
		check(c.Barrier(), "barrier")
		return
	}
	before, start := cpuTime(), time.Now()
	_, err := comm.Recv(c, buf, 0, 1)
	check(err, "recv")
	check(c.Barrier(), "barrier")
	used, wall := cpuTime()-before, time.Since(start)
	if share := used.Seconds() / wall.Seconds(); share > idleCPUShare {
		fail("rank %d used %v of CPU while waiting %v (%.0f%%, bound %.0f%%)",
			c.Rank(), used, wall.Round(time.Millisecond), 100*share, 100*idleCPUShare)
	}
}

// cpuTime is the user and system time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
