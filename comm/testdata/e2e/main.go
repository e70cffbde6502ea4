// Command e2e is the rank program of comm's end-to-end tests: `e2e MODE` runs one group of
// checks on every rank and exits non-zero with a "FAIL" line on the first wrong result.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/rankprog"
)

func main() {
	rankprog.Main("e2e", map[string]func(*comm.Comm){
		"p2p":          p2p,
		"sem":          semantics,
		"nodes":        nodes,
		"allocs":       allocs,
		"stress":       stress,
		"abort":        abort,
		"coll":         collectives,
		"exit3":        exit3,
		"kill9":        kill9,
		"peerlost":     peerLost,
		"idle":         idle,
		"closepending": closePending,
		"closerace":    closeRace,
		"exitpeer":     exitPeer,
		"types":        types,
		"procnull":     procNull,
		"userop":       userOps,
		"topo":         topo,
	})
}

var (
	fail  = rankprog.Fail
	check = rankprog.Check
)

// fill writes a pattern that depends on the message (seed) so that a message delivered to the
// wrong receive, or bytes out of place, are caught.
func fill(b []byte, seed int) {
	for i := range b {
		b[i] = byte(i*7 + seed*13 + i>>10)
	}
}

func verify(b []byte, seed int, what string) {
	for i := range b {
		if want := byte(i*7 + seed*13 + i>>10); b[i] != want {
			fail("%s: byte %d of %d is %d, want %d", what, i, len(b), b[i], want)
		}
	}
}

var sizes = []int{0, 1, 7, 8, 64, 1000, 4096, 16384, 16385, 65536, 65537, 1 << 20, 3<<20 + 5, 8 << 20}

// p2p checks point-to-point semantics: ping-pong of every size between pairs (0,1), (2,3), …,
// wildcard receives, ordering of many messages, and truncation.
func p2p(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	// Ping-pong between pairs; with an odd count the last rank sits out.
	partner := me ^ 1
	if partner < n {
		buf := make([]byte, 8<<20)
		for i, size := range sizes {
			if me%2 == 0 {
				fill(buf[:size], i)
				check(comm.Send(c, buf[:size], partner, i), "send %d bytes", size)
				clear(buf)
				st, err := comm.Recv(c, buf, partner, i)
				check(err, "recv echo of %d bytes", size)
				if st.Count != size || st.Source != partner || st.Tag != i {
					fail("echo status %+v, want %d bytes from %d tag %d", st, size, partner, i)
				}
				verify(buf[:size], i, fmt.Sprintf("echo of %d bytes", size))
			} else {
				st, err := comm.Recv(c, buf, partner, i)
				check(err, "recv %d bytes", size)
				if st.Count != size {
					fail("got %d bytes, want %d", st.Count, size)
				}
				verify(buf[:size], i, fmt.Sprintf("ping of %d bytes", size))
				check(comm.Send(c, buf[:size], partner, i), "echo %d bytes", size)
			}
		}
	}
	check(c.Barrier(), "barrier")

	// Wildcards: every rank sends rank 0 three messages with different tags; rank 0 takes them
	// with AnySource/AnyTag and checks each sender's messages arrive in order.
	if me == 0 {
		next := make([]int, n)
		buf := make([]int64, 3)
		for range 3 * (n - 1) {
			st, err := comm.Recv(c, buf, comm.AnySource, comm.AnyTag)
			check(err, "wildcard recv")
			if st.Tag != 100+next[st.Source] || buf[0] != int64(st.Source) || buf[1] != int64(next[st.Source]) {
				fail("wildcard: from %d tag %d payload %v, expected message %d", st.Source, st.Tag, buf, next[st.Source])
			}
			next[st.Source]++
		}
	} else {
		for k := range 3 {
			check(comm.Send(c, []int64{int64(me), int64(k), 0}, 0, 100+k), "wildcard send")
		}
	}
	check(c.Barrier(), "barrier")

	// Order: 10,000 messages from rank 0 to the last rank, received in send order.
	const many = 10000
	last := n - 1
	if n > 1 && me == 0 {
		for i := range many {
			check(comm.Send(c, []int32{int32(i)}, last, 7), "send %d", i)
		}
	} else if n > 1 && me == last {
		v := []int32{0}
		for i := range many {
			_, err := comm.Recv(c, v, 0, 7)
			check(err, "recv %d", i)
			if v[0] != int32(i) {
				fail("message %d arrived as number %d", v[0], i)
			}
		}
	}
	check(c.Barrier(), "barrier")

	// Truncation, eager and rendezvous: the receive buffer holds 10 elements.
	if n > 1 && (me == 0 || me == last) {
		for _, count := range []int{100, 1 << 18} {
			if me == 0 {
				msg := make([]float64, count)
				check(comm.Send(c, msg, last, 9), "send %d floats", count)
			} else {
				small := make([]float64, 10)
				_, err := comm.Recv(c, small, 0, 9)
				var te *comm.TruncateError
				if !errors.Is(err, comm.ErrTruncate) || !errors.As(err, &te) || te.Size != count*8 || te.Cap != 80 {
					fail("truncated receive of %d floats: %v", count, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprint(count*8)) || !strings.Contains(err.Error(), "80") {
					fail("truncation error does not name both sizes: %v", err)
				}
			}
		}
	}
	check(c.Barrier(), "barrier")

	// Bad arguments are errors, not panics or hangs.
	if err := comm.Send(c, []byte{1}, n, 0); !errors.Is(err, comm.ErrRank) {
		fail("send to rank %d: %v, want ErrRank", n, err)
	}
	if err := comm.Send(c, []byte{1}, 0, -5); !errors.Is(err, comm.ErrTag) {
		fail("send with tag -5: %v, want ErrTag", err)
	}
}

// abort: rank 1 takes the job down with Abort(7) while the others wait for it.
func abort(c *comm.Comm) {
	check(c.Barrier(), "barrier")
	if c.Rank() == 1 {
		c.Abort(7)
	}
	comm.Recv(c, make([]byte, 1), 1, 0)
	time.Sleep(time.Minute)
}

// exit3: rank 1 exits with status 3 while the others wait for it.
func exit3(c *comm.Comm) {
	check(c.Barrier(), "barrier")
	if c.Rank() == 1 {
		os.Exit(3)
	}
	comm.Recv(c, make([]byte, 1), 1, 0)
	time.Sleep(time.Minute)
}

// kill9: rank 1 is killed by SIGKILL in the middle of a transfer.
func kill9(c *comm.Comm) {
	check(c.Barrier(), "barrier")
	if c.Rank() == 1 {
		go func() {
			time.Sleep(50 * time.Millisecond)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}()
		buf := make([]byte, 1<<20)
		for {
			comm.Recv(c, buf, 0, 0)
		}
	}
	buf := make([]byte, 1<<20)
	for {
		if err := comm.Send(c, buf, 1, 0); err != nil {
			time.Sleep(time.Minute) // gorun ends the job
		}
	}
}

// peerLost: rank 1 dies while rank 0 is blocked receiving from it; rank 0 must get
// ErrPeerLost within 2 seconds. Rank 0 ignores SIGTERM so that it can report (gorun's grace
// period must be longer than the check).
func peerLost(c *comm.Comm) {
	signalIgnoreTerm()
	check(c.Barrier(), "barrier")
	switch c.Rank() {
	case 1:
		time.Sleep(100 * time.Millisecond)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case 0:
		start := time.Now()
		_, err := comm.Recv(c, make([]byte, 8), 1, 0)
		took := time.Since(start) - 100*time.Millisecond
		var pl *comm.PeerLostError
		if !errors.Is(err, comm.ErrPeerLost) || !errors.As(err, &pl) || pl.Rank != 1 {
			fail("recv from a dead peer: %v, want ErrPeerLost naming rank 1", err)
		}
		fmt.Printf("peerlost: rank 0 got %v after %v\n", err, took.Round(time.Millisecond))
		if took > 2*time.Second {
			fail("ErrPeerLost took %v", took)
		}
		os.Exit(0)
	}
	time.Sleep(time.Minute)
}
