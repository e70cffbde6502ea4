package comm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/memtransport"
)

// Point-to-point semantics in process, modelled on MPI's chapter 3 (and on the end-to-end
// suite, testdata/e2e/semantics.go): every size, wildcards, order, probes, synchronous sends,
// exchanges (errors and requests: inprocess_requests_test.go).

// p2pSizes cross every protocol boundary: empty, tiny, around the in-memory eager limit, and
// rendezvous messages of several MiB. ringSizes leave out the largest: every rank of a ring
// moves them at once, and under the race detector moving a MiB costs milliseconds.
var (
	p2pSizes  = []int{0, 1, 7, 64, memtransport.DefaultEagerLimit, memtransport.DefaultEagerLimit + 1, 100 << 10, 1 << 20, 3<<20 + 5}
	ringSizes = p2pSizes[:len(p2pSizes)-2]
)

func TestInProcessPingPong(t *testing.T) { forEachJob(t, pingPong) }

// pingPong: pairs (0,1), (2,3), … echo every size; with an odd count the last rank sends
// every size to itself instead (the self path).
func pingPong(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	partner := me ^ 1
	buf := make([]byte, 3<<20+5)
	if partner >= n {
		for i, size := range p2pSizes {
			s, err := comm.Isend(c, pattern(make([]byte, size), i), me, i)
			if err != nil {
				return err
			}
			if st, err := comm.Recv(c, buf, me, i); err != nil || st.Count != size {
				return rankErrorf("%d bytes to oneself: %+v %v", size, st, err)
			}
			if err := samePattern(buf[:size], i, fmt.Sprintf("%d bytes to oneself", size)); err != nil {
				return err
			}
			if _, err := s.Wait(); err != nil {
				return err
			}
		}
		return nil
	}
	for i, size := range p2pSizes {
		if me%2 == 0 {
			if err := comm.Send(c, pattern(buf[:size], i), partner, i); err != nil {
				return err
			}
			clear(buf)
			st, err := comm.Recv(c, buf, partner, i)
			if err != nil {
				return err
			}
			if st.Count != size || st.Source != partner || st.Tag != i {
				return rankErrorf("echo status %+v, want %d bytes from %d tag %d", st, size, partner, i)
			}
			if err := samePattern(buf[:size], i, fmt.Sprintf("echo of %d bytes", size)); err != nil {
				return err
			}
			continue
		}
		st, err := comm.Recv(c, buf, partner, i)
		if err != nil {
			return err
		}
		if st.Count != size {
			return rankErrorf("got %d bytes, want %d", st.Count, size)
		}
		if err := samePattern(buf[:size], i, fmt.Sprintf("ping of %d bytes", size)); err != nil {
			return err
		}
		if err := comm.Send(c, buf[:size], partner, i); err != nil {
			return err
		}
	}
	return nil
}

func TestInProcessWildcards(t *testing.T) {
	forEachJob(t, inSequence(
		namedStep{"any source, any tag", anySourceAnyTag},
		namedStep{"mixed sizes in order", mixedSizeOrder},
		namedStep{"racing senders", racingSenders},
	))
}

// anySourceAnyTag: every rank sends rank 0 three messages with different tags; rank 0 takes
// them with AnySource and AnyTag, and each sender's arrive in order.
func anySourceAnyTag(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	if me != 0 {
		for k := range 3 {
			if err := comm.Send(c, []int64{int64(me), int64(k)}, 0, 100+k); err != nil {
				return err
			}
		}
		return c.Barrier()
	}
	next := make([]int, n)
	buf := make([]int64, 2)
	for range 3 * (n - 1) {
		st, err := comm.Recv(c, buf, comm.AnySource, comm.AnyTag)
		if err != nil {
			return err
		}
		if st.Tag != 100+next[st.Source] || buf[0] != int64(st.Source) || buf[1] != int64(next[st.Source]) || st.Count != 2 {
			return rankErrorf("from %d tag %d payload %v, expected message %d", st.Source, st.Tag, buf, next[st.Source])
		}
		next[st.Source]++
	}
	return c.Barrier()
}

// mixedSizeOrder: rank 0 sends the last rank messages that alternate eager and rendezvous
// sizes and two tags; a receiver taking them with wildcards sees send order.
func mixedSizeOrder(c *comm.Comm) error {
	last := c.Size() - 1
	sizes := []int{1, 1 << 20, 8, 300 << 10, 0, 70 << 10, 16 << 10, 2 << 20, 3}
	if c.Rank() == 0 {
		reqs := make([]*comm.Request, len(sizes))
		for i, n := range sizes {
			var err error
			if reqs[i], err = comm.Isend(c, pattern(make([]byte, n), i), last, i%2); err != nil {
				return err
			}
		}
		if last != 0 {
			return comm.WaitAll(reqs...)
		}
		defer comm.WaitAll(reqs...) // a world of one receives its own messages below
	}
	if c.Rank() != last {
		return nil
	}
	buf := make([]byte, 2<<20)
	for i, n := range sizes {
		st, err := comm.Recv(c, buf, comm.AnySource, comm.AnyTag)
		if err != nil {
			return err
		}
		if st.Count != n || st.Tag != i%2 || st.Source != 0 {
			return rankErrorf("message %d: %d bytes tag %d from %d, want %d bytes tag %d (overtaken)", i, st.Count, st.Tag, st.Source, n, i%2)
		}
		if err := samePattern(buf[:n], i, fmt.Sprintf("message %d", i)); err != nil {
			return err
		}
	}
	return nil
}

// racingSenders: every rank (rank 0 too) sends rank 0 a burst at once; rank 0 takes them with
// AnySource: nothing is lost, and each sender's arrive in order.
func racingSenders(c *comm.Comm) error {
	const burst = 100
	me, n := c.Rank(), c.Size()
	send := func() error {
		for k := range burst {
			if err := comm.Send(c, []int32{int32(me), int32(k)}, 0, 3); err != nil {
				return err
			}
		}
		return nil
	}
	if me != 0 {
		return send()
	}
	errc := make(chan error, 1)
	go func() { errc <- send() }()
	next := make([]int32, n)
	v := make([]int32, 2)
	for range burst * n {
		st, err := comm.Recv(c, v, comm.AnySource, 3)
		if err != nil {
			return err
		}
		if v[0] != int32(st.Source) || v[1] != next[st.Source] {
			return rankErrorf("from %d got %v, expected message %d", st.Source, v, next[st.Source])
		}
		next[st.Source]++
	}
	return <-errc
}

func TestInProcessOrdering(t *testing.T) { forEachJob(t, manyInOrder) }

// manyInOrder: 1,000 messages from rank 0 to the last rank, a few of them rendezvous, posted
// all at once, are received in send order by receives posted in advance and by receives posted
// late.
func manyInOrder(c *comm.Comm) error {
	const many = 1000
	last := c.Size() - 1
	size := func(i int) int {
		if i%97 == 0 {
			return 40 << 10
		}
		return 4 * (1 + i%5)
	}
	var sends []*comm.Request
	if c.Rank() == 0 {
		for i := range many {
			msg := make([]int32, size(i)/4)
			msg[0] = int32(i)
			r, err := comm.Isend(c, msg, last, 7)
			if err != nil {
				return err
			}
			sends = append(sends, r)
		}
	}
	if c.Rank() == last {
		var early []*comm.Request
		bufs := make([][]int32, many/2)
		for i := range bufs {
			bufs[i] = make([]int32, 10<<10)
			r, err := comm.Irecv(c, bufs[i], 0, comm.AnyTag)
			if err != nil {
				return err
			}
			early = append(early, r)
		}
		for i, r := range early {
			st, err := r.Wait()
			if err != nil {
				return err
			}
			if bufs[i][0] != int32(i) || st.Count*4 != size(i) {
				return rankErrorf("posted receive %d got message %d (%d elements)", i, bufs[i][0], st.Count)
			}
		}
		v := make([]int32, 10<<10)
		for i := many / 2; i < many; i++ {
			if _, err := comm.Recv(c, v, 0, 7); err != nil {
				return err
			}
			if v[0] != int32(i) {
				return rankErrorf("receive %d got message %d", i, v[0])
			}
		}
	}
	return comm.WaitAll(sends...)
}

func TestInProcessProbe(t *testing.T) {
	forEachJob(t, inSequence(namedStep{"probe then receive", probeThenRecv}, namedStep{"probe with a deadline", probeDeadline}))
}

// probeThenRecv: Probe describes a message (Count in bytes), and a Recv with its source and tag
// gets exactly it; Iprobe finds nothing once all are received.
func probeThenRecv(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	right, left := (me+1)%n, (me-1+n)%n
	sizes := []int{5, 100 << 10, 0, 17}
	reqs := make([]*comm.Request, len(sizes))
	for i, size := range sizes {
		var err error
		if reqs[i], err = comm.Isend(c, pattern(make([]byte, size), 40+i), right, 40+i); err != nil {
			return err
		}
	}
	for range sizes {
		st, err := comm.Probe(c, comm.AnySource, comm.AnyTag)
		if err != nil {
			return err
		}
		if st.Source != left {
			return rankErrorf("probe found a message from %d, want %d", st.Source, left)
		}
		ok, ist, err := comm.Iprobe(c, left, st.Tag)
		if err != nil || !ok || ist != st {
			return rankErrorf("iprobe after probe: %v %+v %v, probe said %+v", ok, ist, err, st)
		}
		b := make([]byte, st.Count)
		got, err := comm.Recv(c, b, st.Source, st.Tag)
		if err != nil {
			return err
		}
		if got.Count != st.Count || got.Tag != st.Tag || st.Count != sizes[st.Tag-40] {
			return rankErrorf("probe said %+v, recv got %+v", st, got)
		}
		if err := samePattern(b, st.Tag, "probed message"); err != nil {
			return err
		}
	}
	if err := comm.WaitAll(reqs...); err != nil {
		return err
	}
	if ok, _, err := comm.Iprobe(c, comm.AnySource, comm.AnyTag); ok || err != nil {
		return rankErrorf("iprobe found a message after all were received (%v)", err)
	}
	return c.Barrier() // nobody sends again before every rank has looked
}

// probeDeadline: a probe for a message that never comes ends with its context.
func probeDeadline(c *comm.Comm) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := comm.ProbeContext(ctx, c, comm.AnySource, 12345); !errors.Is(err, context.DeadlineExceeded) {
		return rankErrorf("probe with a deadline: %v", err)
	}
	return nil
}

func TestInProcessSsend(t *testing.T) { forEachJob(t, ssendWaits) }

// ssendWaits: a synchronous send, however small, does not complete until its receive has
// been posted, which every receiver delays until after a barrier; then it completes.
func ssendWaits(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	to, from := (me+1)%n, (me-1+n)%n
	r, err := comm.Issend(c, []byte("synchron"), to, 50)
	if err != nil {
		return err
	}
	for range 20 {
		if done, _, _ := r.Test(); done {
			return rankErrorf("ssend completed before the receiver posted its receive")
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	b := make([]byte, 8)
	if _, err := comm.Recv(c, b, from, 50); err != nil || string(b) != "synchron" {
		return rankErrorf("receive of the synchronous message: %q %v", b, err)
	}
	if _, err := r.Wait(); err != nil {
		return err
	}
	// A blocking Ssend to a receive already posted.
	rr, err := comm.Irecv(c, make([]byte, 1), from, 52)
	if err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if err := comm.Ssend(c, []byte{1}, to, 52); err != nil {
		return err
	}
	_, err = rr.Wait()
	return err
}

func TestInProcessSendrecv(t *testing.T) { forEachJob(t, sendrecvRing) }

// sendrecvRing: every rank exchanges with both neighbours at every size up to ringSizes'
// largest, blocking and nonblocking, and with itself.
func sendrecvRing(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	right, left := (me+1)%n, (me-1+n)%n
	for i, size := range ringSizes {
		in := make([]byte, size)
		st, err := comm.Sendrecv(c, pattern(make([]byte, size), me*100+i), right, i, in, left, i)
		if err != nil {
			return err
		}
		if st.Source != left || st.Tag != i || st.Count != size {
			return rankErrorf("sendrecv of %d bytes: %+v", size, st)
		}
		if err := samePattern(in, left*100+i, fmt.Sprintf("sendrecv of %d bytes", size)); err != nil {
			return err
		}
		rr, err := comm.Irecv(c, in, right, 1000+i)
		if err != nil {
			return err
		}
		sr, err := comm.Isend(c, pattern(make([]byte, size), me*100+i+1), left, 1000+i)
		if err != nil {
			return err
		}
		if err := comm.WaitAll(rr, sr); err != nil {
			return err
		}
		if err := samePattern(in, right*100+i+1, fmt.Sprintf("reverse ring of %d bytes", size)); err != nil {
			return err
		}
		st, err = comm.Sendrecv(c, pattern(make([]byte, size), i), me, 7, in, me, 7)
		if err != nil || st.Source != me || st.Count != size {
			return rankErrorf("sendrecv of %d bytes with oneself: %+v %v", size, st, err)
		}
		if err := samePattern(in, i, "sendrecv with oneself"); err != nil {
			return err
		}
	}
	return nil
}
