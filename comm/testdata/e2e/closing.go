package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// closePending: a receive nobody matches and a large send nobody receives are pending when
// every rank calls Close; afterwards both are complete with ErrClosed (Test must not touch
// the unmapped segment), and every call on the world or on a communicator derived from it
// fails with ErrClosed.
func closePending(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	dup, err := c.Dup()
	check(err, "dup")
	reqs := map[string]*comm.Request{}
	reqs["irecv"], err = comm.Irecv(c, make([]byte, 16), comm.AnySource, 99)
	check(err, "irecv")
	reqs["irecv-dup"], err = comm.Irecv(dup, make([]byte, 1<<20), (me+1)%n, 99)
	check(err, "irecv on dup")
	if n > 1 {
		reqs["isend-large"], err = comm.Isend(c, make([]byte, 1<<20), (me+1)%n, 98)
		check(err, "isend")
	}
	check(c.Close(), "close")
	for name, r := range reqs {
		done, _, err := r.Test()
		if !done {
			fail("%s still pending after Close", name)
		}
		if !errors.Is(err, comm.ErrClosed) {
			fail("%s: Test after Close gave %v, want ErrClosed", name, err)
		}
		if _, err := r.Wait(); !errors.Is(err, comm.ErrClosed) {
			fail("%s: Wait after Close gave %v, want ErrClosed", name, err)
		}
		if r.Cancel() {
			fail("%s: Cancel after Close canceled", name)
		}
	}
	buf := []int64{1}
	for _, cc := range []*comm.Comm{c, dup} {
		calls := map[string]func() error{
			"Send":  func() error { return comm.Send(cc, buf, 0, 0) },
			"Ssend": func() error { return comm.Ssend(cc, buf, 0, 0) },
			"Recv":  func() error { _, err := comm.Recv(cc, buf, comm.AnySource, 0); return err },
			"Sendrecv": func() error {
				_, err := comm.Sendrecv(cc, buf, 0, 0, buf, 0, 0)
				return err
			},
			"Isend":     func() error { _, err := comm.Isend(cc, buf, 0, 0); return err },
			"Irecv":     func() error { _, err := comm.Irecv(cc, buf, 0, 0); return err },
			"Probe":     func() error { _, err := comm.Probe(cc, comm.AnySource, comm.AnyTag); return err },
			"Iprobe":    func() error { _, _, err := comm.Iprobe(cc, 0, 0); return err },
			"Barrier":   cc.Barrier,
			"Bcast":     func() error { return comm.Bcast(cc, buf, 0) },
			"Allreduce": func() error { return comm.Allreduce(cc, buf, buf, comm.Sum) },
			"Dup":       func() error { _, err := cc.Dup(); return err },
			"Split":     func() error { _, err := cc.Split(0, 0); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, comm.ErrClosed) {
				fail("%s after Close: %v, want ErrClosed", name, err)
			}
		}
	}
}

// closeRace: eight goroutines keep sending, receiving, probing and running collectives (the
// world's, in the node arena, and a duplicate's) while the main goroutine calls Close at a
// random moment. Every goroutine must end, with nil or ErrClosed, soon after Close returns.
func closeRace(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	dup, err := c.Dup()
	check(err, "dup")
	next, prev := (me+1)%n, (me-1+n)%n
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	// run calls step until it fails: ErrClosed ends the loop quietly, anything else is
	// recorded.
	run := func(name string, step func(i int) error) {
		wg.Go(func() {
			for i := 0; ; i++ {
				err := step(i)
				if err == nil {
					continue
				}
				if !errors.Is(err, comm.ErrClosed) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s, step %d: %w", name, i, err))
					mu.Unlock()
				}
				return
			}
		})
	}
	sizes := []int{0, 8, 4 << 10, 64 << 10, 1 << 20}
	for g := range 2 {
		tag := 10 + g
		run(fmt.Sprintf("sendrecv %d", g), func(i int) error {
			size := sizes[(i+g)%len(sizes)]
			_, err := comm.Sendrecv(c, make([]byte, size), next, tag, make([]byte, size), prev, tag)
			return err
		})
	}
	run("send", func(i int) error { return comm.Send(c, make([]byte, sizes[i%len(sizes)]), next, 20) })
	run("recv", func(i int) error {
		_, err := comm.Recv(c, make([]byte, 1<<20), comm.AnySource, 20)
		return err
	})
	run("probe", func(i int) error {
		st, err := comm.Probe(c, comm.AnySource, 30)
		if err != nil {
			return err
		}
		_, err = comm.Recv(c, make([]byte, st.Count), st.Source, 30)
		return err
	})
	run("isend", func(i int) error {
		r, err := comm.Isend(c, make([]byte, sizes[i%len(sizes)]), next, 30)
		if err != nil {
			return err
		}
		_, err = r.Wait()
		return err
	})
	run("world collectives", func(i int) error {
		big := make([]float64, 64<<10)
		return errors.Join(comm.Allreduce(c, big, big, comm.Sum), comm.Bcast(c, big[:1], i%n), c.Barrier())
	})
	run("dup collectives", func(i int) error {
		v := []int64{int64(me)}
		return errors.Join(comm.Allreduce(dup, v, v, comm.Sum), dup.Barrier())
	})
	time.Sleep(time.Duration(20+rand.IntN(150)) * time.Millisecond)
	check(c.Close(), "close")
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		fail("goroutines still blocked 10s after Close")
	}
	if err := errors.Join(errs...); err != nil {
		fail("calls racing with Close: %v", err)
	}
}

// exitPeer: rank 1 exits in order (status 0) without closing, while rank 2 keeps a trickle of
// messages arriving at rank 0, so that rank 0's driver always has something to do and never
// sleeps. Rank 0, blocked receiving from rank 1, must still learn of the exit (the driver
// checks deaths on a clock, not only between sleeps) within two seconds, even with a spin of
// an hour (GORUN_SPIN=1h, set by the test).
func exitPeer(c *comm.Comm) {
	if c.Size() != 3 {
		fail("exitpeer wants 3 ranks")
	}
	check(c.Barrier(), "barrier")
	switch c.Rank() {
	case 1:
		time.Sleep(100 * time.Millisecond)
		os.Exit(0)
	case 2:
		for start := time.Now(); time.Since(start) < 4*time.Second; {
			if comm.Send(c, []int64{1}, 0, 5) != nil {
				break // rank 0 is gone: done
			}
			time.Sleep(100 * time.Microsecond)
		}
		os.Exit(0)
	}
	start := time.Now()
	_, err := comm.Recv(c, make([]byte, 8), 1, 0)
	took := time.Since(start) - 100*time.Millisecond
	var pl *comm.PeerLostError
	if !errors.Is(err, comm.ErrPeerLost) || !errors.As(err, &pl) || pl.Rank != 1 {
		fail("recv from a peer that exited: %v, want ErrPeerLost naming rank 1", err)
	}
	fmt.Printf("exitpeer: rank 0 got %v after %v\n", err, took.Round(time.Millisecond))
	if took > 2*time.Second {
		fail("ErrPeerLost took %v", took)
	}
	os.Exit(0)
}
