package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// semantics checks MPI's point-to-point rules, modelled on the standard's chapter 3: order,
// wildcards, posted versus unexpected receives, probe, synchronous sends, communicators,
// nonblocking rings, deadlines, element counts, and many goroutines on one communicator.
func semantics(c *comm.Comm) {
	steps := []struct {
		name string
		f    func(*comm.Comm)
	}{
		{"mixed-size order with wildcards", mixedOrder},
		{"racing senders", racingSenders},
		{"posted receive first", postedFirst},
		{"probe then receive", probeThenRecv},
		{"ssend waits for the receive", ssendWaits},
		{"split", split},
		{"dup is separate", dupIsSeparate},
		{"nonblocking ring", nonblockingRing},
		{"deadline", deadline},
		{"element counts", elementCounts},
		{"goroutines", goroutines},
	}
	for _, s := range steps {
		s.f(c)
		check(c.Barrier(), "barrier after %s", s.name)
	}
}

// mixedOrder: rank 0 sends rank 1 messages alternating eager and rendezvous sizes with two
// tags; rank 1 takes them with AnySource/AnyTag and must see send order.
func mixedOrder(c *comm.Comm) {
	if c.Size() < 2 || c.Rank() > 1 {
		return
	}
	sizes := []int{1, 1 << 20, 8, 300 << 10, 0, 70 << 10, 16 << 10, 2 << 20, 3}
	if c.Rank() == 0 {
		reqs := make([]*comm.Request, len(sizes))
		for i, n := range sizes {
			b := make([]byte, n)
			fill(b, i)
			var err error
			reqs[i], err = comm.Isend(c, b, 1, i%2)
			check(err, "isend %d", i)
		}
		check(comm.WaitAll(reqs...), "waitall")
		return
	}
	buf := make([]byte, 2<<20)
	for i, n := range sizes {
		st, err := comm.Recv(c, buf, comm.AnySource, comm.AnyTag)
		check(err, "recv %d", i)
		if st.Count != n || st.Tag != i%2 {
			fail("message %d: got %d bytes tag %d, want %d bytes tag %d (overtaken)", i, st.Count, st.Tag, n, i%2)
		}
		verify(buf[:n], i, fmt.Sprintf("message %d", i))
	}
}

// racingSenders: every other rank sends rank 0 a burst; rank 0 takes them with AnySource and
// checks each sender's order and that nothing is lost.
func racingSenders(c *comm.Comm) {
	const burst = 50
	if c.Rank() != 0 {
		for k := range burst {
			check(comm.Send(c, []int32{int32(c.Rank()), int32(k)}, 0, 3), "send")
		}
		return
	}
	next := make([]int32, c.Size())
	v := make([]int32, 2)
	for range burst * (c.Size() - 1) {
		st, err := comm.Recv(c, v, comm.AnySource, 3)
		check(err, "recv")
		if v[0] != int32(st.Source) || v[1] != next[st.Source] {
			fail("from %d got %v, expected message %d", st.Source, v, next[st.Source])
		}
		next[st.Source]++
	}
}

// postedFirst: a receive posted before a message arrives takes it; a later receive gets the
// next one.
func postedFirst(c *comm.Comm) {
	if c.Size() < 2 || c.Rank() > 1 {
		c.Barrier()
		return
	}
	if c.Rank() == 1 {
		first := make([]int64, 1)
		r, err := comm.Irecv(c, first, 0, comm.AnyTag)
		check(err, "irecv")
		c.Barrier()
		second := make([]int64, 1)
		_, err = comm.Recv(c, second, 0, 4)
		check(err, "recv")
		_, err = r.Wait()
		check(err, "wait")
		if first[0] != 1 || second[0] != 2 {
			fail("posted receive got %d, later receive %d; want 1, 2", first[0], second[0])
		}
		return
	}
	c.Barrier() // the receive is posted before anything is sent
	check(comm.Send(c, []int64{1}, 1, 4), "send")
	check(comm.Send(c, []int64{2}, 1, 4), "send")
}

// probeThenRecv: Probe describes a message; a Recv with its source and tag gets exactly it.
func probeThenRecv(c *comm.Comm) {
	if c.Size() < 2 || c.Rank() > 1 {
		return
	}
	sizes := []int{5, 1 << 20, 17}
	if c.Rank() == 0 {
		for i, n := range sizes {
			b := make([]byte, n)
			fill(b, 40+i)
			check(comm.Send(c, b, 1, 40+i), "send")
		}
		return
	}
	for range sizes {
		st, err := comm.Probe(c, comm.AnySource, comm.AnyTag)
		check(err, "probe")
		b := make([]byte, st.Count)
		got, err := comm.Recv(c, b, st.Source, st.Tag)
		check(err, "recv after probe")
		if got.Count != st.Count || got.Tag != st.Tag {
			fail("probe said %+v, recv got %+v", st, got)
		}
		verify(b, st.Tag, "probed message")
	}
	if ok, _, err := comm.Iprobe(c, 0, comm.AnyTag); ok || err != nil {
		fail("iprobe found a message after all were received (%v)", err)
	}
}

// ssendWaits: a synchronous send does not complete until the receive has started, which
// rank 1 delays until told to go; then it completes.
func ssendWaits(c *comm.Comm) {
	if c.Size() < 2 || c.Rank() > 1 {
		return
	}
	if c.Rank() == 1 {
		_, err := comm.Recv(c, make([]byte, 1), 0, 51) // "go"
		check(err, "recv go")
		_, err = comm.Recv(c, make([]byte, 8), 0, 50)
		check(err, "recv ssend")
		return
	}
	r, err := comm.Issend(c, []byte("synchron"), 1, 50)
	check(err, "issend")
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		if done, _, _ := r.Test(); done {
			fail("ssend completed before the receiver posted its receive")
		}
		time.Sleep(time.Millisecond)
	}
	check(comm.Send(c, []byte{1}, 1, 51), "send go")
	_, err = r.Wait()
	check(err, "ssend wait")
}

// split: colors by parity, keys reverse the order; ranks and traffic are translated.
func split(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	sub, err := c.Split(me%2, -me)
	check(err, "split")
	// The members of my color, as the new communicator orders them: descending world rank.
	var members []int
	for r := n - 1; r >= 0; r-- {
		if r%2 == me%2 {
			members = append(members, r)
		}
	}
	if sub.Size() != len(members) || members[sub.Rank()] != me {
		fail("split: rank %d got sub-rank %d of %d, want %d of %d", me, sub.Rank(), sub.Size(), (n-1-me)/2, len(members))
	}
	// A ring in the sub-communicator carries world ranks, to check the translation both ways.
	right, left := (sub.Rank()+1)%sub.Size(), (sub.Rank()-1+sub.Size())%sub.Size()
	got := []int64{-1}
	st, err := comm.Sendrecv(sub, []int64{int64(me)}, right, 0, got, left, 0)
	check(err, "sendrecv in split")
	if st.Source != left || got[0] != int64(members[left]) {
		fail("split ring: status source %d, payload world rank %d; want %d, %d", st.Source, got[0], left, members[left])
	}
	none, err := c.Split(comm.Undefined, 0)
	if none != nil || err != nil {
		fail("split with Undefined: %v, %v", none, err)
	}
	check(sub.Close(), "close sub")
	if err := comm.Send(sub, []byte{1}, 0, 0); !errors.Is(err, comm.ErrClosed) {
		fail("send on a closed communicator: %v", err)
	}
}

// dupIsSeparate: a message on the duplicate never matches a receive on the parent.
func dupIsSeparate(c *comm.Comm) {
	d, err := c.Dup()
	check(err, "dup")
	defer d.Close()
	if c.Size() < 2 || c.Rank() > 1 {
		return
	}
	if c.Rank() == 0 {
		check(comm.Send(d, []int32{1}, 1, 7), "send on dup")
		check(comm.Send(c, []int32{2}, 1, 7), "send on parent")
		return
	}
	v := []int32{0}
	_, err = comm.Recv(c, v, comm.AnySource, comm.AnyTag)
	check(err, "recv on parent")
	if v[0] != 2 {
		fail("a receive on the parent got the duplicate's message")
	}
	_, err = comm.Recv(d, v, 0, 7)
	check(err, "recv on dup")
	if v[0] != 1 {
		fail("dup got %d", v[0])
	}
}

// nonblockingRing: every rank receives from the left and sends to the right at every size.
func nonblockingRing(c *comm.Comm) {
	n, me := c.Size(), c.Rank()
	right, left := (me+1)%n, (me-1+n)%n
	for i, size := range []int{0, 1, 100, 16384, 16385, 100 << 10, 1 << 20, 4 << 20} {
		in, out := make([]byte, size), make([]byte, size)
		fill(out, me*100+i)
		rr, err := comm.Irecv(c, in, left, i)
		check(err, "irecv")
		sr, err := comm.Isend(c, out, right, i)
		check(err, "isend")
		check(comm.WaitAll(rr, sr), "ring waitall size %d", size)
		verify(in, left*100+i, fmt.Sprintf("ring message of %d bytes", size))
	}
}

// deadline: a receive that never matches returns the context's error in time and can be
// canceled; the rank stays usable.
func deadline(c *comm.Comm) {
	r, err := comm.Irecv(c, make([]byte, 4), comm.AnySource, 999)
	check(err, "irecv")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := r.WaitContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		fail("wait with a deadline: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		fail("a 50ms deadline took %v", took)
	}
	if !r.Cancel() {
		fail("could not cancel the unmatched receive")
	}
	if _, err := r.Wait(); !errors.Is(err, comm.ErrCanceled) {
		fail("canceled receive: %v", err)
	}
	i, _, err := comm.WaitAny(nil, r)
	if i != 1 || !errors.Is(err, comm.ErrCanceled) {
		fail("WaitAny over a canceled request: %d %v", i, err)
	}
}

// elementCounts: Count is in elements of the receive type; a size that is not a whole number
// of elements is an error.
func elementCounts(c *comm.Comm) {
	if c.Size() < 2 || c.Rank() > 1 {
		return
	}
	if c.Rank() == 0 {
		check(comm.Send(c, make([]float64, 3), 1, 60), "send")
		check(comm.Send(c, make([]byte, 3), 1, 61), "send")
		return
	}
	st, err := comm.Recv(c, make([]float64, 10), 0, 60)
	check(err, "recv")
	if st.Count != 3 {
		fail("Count = %d, want 3 float64s", st.Count)
	}
	if _, err := comm.Recv(c, make([]int32, 10), 0, 61); !errors.Is(err, comm.ErrCount) {
		fail("3 bytes into int32s: %v, want ErrCount", err)
	}
}

// goroutines: 8 goroutines per rank send and receive on one communicator at once, each with
// its own tag, across eager and rendezvous sizes; every payload is checked.
func goroutines(c *comm.Comm) {
	n, me := c.Size(), c.Rank()
	const workers, rounds = 8, 100
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(me), uint64(g)))
			right, left := (me+1)%n, (me-1+n)%n
			for k := range rounds {
				size := []int{0, 8, 1000, 20000, 200000}[rng.IntN(5)]
				out := make([]byte, size)
				fill(out, g*1000+k)
				in := make([]byte, 200000)
				st, err := comm.Sendrecv(c, out, right, g, in, left, g)
				check(err, "goroutine %d round %d", g, k)
				verify(in[:st.Count], g*1000+k, fmt.Sprintf("goroutine %d round %d", g, k))
			}
		}()
	}
	wg.Wait()
}
