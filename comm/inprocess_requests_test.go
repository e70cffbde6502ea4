package comm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// Point-to-point errors and requests in process: truncation, element counts, bad arguments,
// deadlines and cancellation, WaitAny and TestAll, receives posted first, many goroutines on
// one communicator.

func TestInProcessErrors(t *testing.T) {
	forEachJob(t, inSequence(
		namedStep{"truncation", truncation},
		namedStep{"element counts", elementCounts},
		namedStep{"bad arguments", badArguments},
	))
}

// truncation: a message larger than the receive buffer, eager or rendezvous, fills the buffer
// and fails with a *TruncateError that names both sizes.
func truncation(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	to, from := (me+1)%n, (me-1+n)%n
	for i, count := range []int{100, 1 << 14} {
		msg := make([]float64, count)
		for j := range msg {
			msg[j] = float64(j + i)
		}
		s, err := comm.Isend(c, msg, to, 9+i)
		if err != nil {
			return err
		}
		small := make([]float64, 10)
		st, err := comm.Recv(c, small, from, 9+i)
		var te *comm.TruncateError
		if !errors.Is(err, comm.ErrTruncate) || !errors.As(err, &te) || te.Size != count*8 || te.Cap != 80 {
			return rankErrorf("truncated receive of %d floats: %v", count, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(count*8)) || !strings.Contains(err.Error(), "80") {
			return rankErrorf("truncation error does not name both sizes: %v", err)
		}
		if st.Count != 10 || small[9] != float64(9+i) {
			return rankErrorf("truncated receive: status %+v, buffer %v", st, small)
		}
		if _, err := s.Wait(); err != nil {
			return rankErrorf("the send of a truncated message: %v", err)
		}
	}
	return nil
}

// elementCounts: Count is in elements of the receive's type; a size that is not a whole
// number of elements is ErrCount.
func elementCounts(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	to, from := (me+1)%n, (me-1+n)%n
	s1, err := comm.Isend(c, make([]float64, 3), to, 60)
	if err != nil {
		return err
	}
	s2, err := comm.Isend(c, make([]byte, 3), to, 61)
	if err != nil {
		return err
	}
	st, err := comm.Recv(c, make([]float64, 10), from, 60)
	if err != nil || st.Count != 3 {
		return rankErrorf("3 float64s: Count %d, %v", st.Count, err)
	}
	if _, err := comm.Recv(c, make([]int32, 10), from, 61); !errors.Is(err, comm.ErrCount) {
		return rankErrorf("3 bytes into int32s: %v, want ErrCount", err)
	}
	return comm.WaitAll(s1, s2)
}

// badArguments are errors, not panics or hangs.
func badArguments(c *comm.Comm) error {
	n := c.Size()
	for _, tc := range []struct {
		what string
		err  error
		want error
	}{
		{"send to rank n", comm.Send(c, []byte{1}, n, 0), comm.ErrRank},
		{"send to rank -1", comm.Send(c, []byte{1}, -1, 0), comm.ErrRank},
		{"send with a negative tag", comm.Send(c, []byte{1}, 0, -5), comm.ErrTag},
		{"send with AnyTag", comm.Send(c, []byte{1}, 0, comm.AnyTag), comm.ErrTag},
		{"ssend to AnySource", comm.Ssend(c, []byte{1}, comm.AnySource, 0), comm.ErrRank},
		{"receive from rank n", errOf(comm.Recv(c, []byte{1}, n, 0)), comm.ErrRank},
		{"receive with tag -7", errOf(comm.Recv(c, []byte{1}, 0, -7)), comm.ErrTag},
		{"probe rank n", errOf(comm.Probe(c, n, 0)), comm.ErrRank},
		{"irecv from rank n", errOf(comm.Irecv(c, []byte{1}, n, 0)), comm.ErrRank},
		{"isend to rank n", errOf(comm.Isend(c, []byte{1}, n, 0)), comm.ErrRank},
		{"sendrecv to rank n", errOf(comm.Sendrecv(c, []byte{1}, n, 0, []byte{1}, 0, 0)), comm.ErrRank},
	} {
		if !errors.Is(tc.err, tc.want) {
			return rankErrorf("%s: %v, want %v", tc.what, tc.err, tc.want)
		}
	}
	return nil
}

func errOf[T any](_ T, err error) error { return err }

func TestInProcessRequests(t *testing.T) {
	forEachJob(t, inSequence(
		namedStep{"deadline and cancel", deadlineAndCancel},
		namedStep{"wait any", waitAny},
		namedStep{"posted receive first", postedFirst},
	))
}

// deadlineAndCancel: a receive that never matches returns its context's error, can be
// canceled, and then completes with ErrCanceled; the rank stays usable.
func deadlineAndCancel(c *comm.Comm) error {
	r, err := comm.Irecv(c, make([]byte, 4), comm.AnySource, 999)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := r.WaitContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		return rankErrorf("wait with a deadline: %v", err)
	}
	if !r.Cancel() {
		return rankErrorf("could not cancel the unmatched receive")
	}
	if _, err := r.Wait(); !errors.Is(err, comm.ErrCanceled) {
		return rankErrorf("canceled receive: %v", err)
	}
	if r.Cancel() {
		return rankErrorf("canceled twice")
	}
	i, _, err := comm.WaitAny(nil, r)
	if i != 1 || !errors.Is(err, comm.ErrCanceled) {
		return rankErrorf("WaitAny over a canceled request: %d %v", i, err)
	}
	if i, _, err := comm.WaitAny(nil, nil); i != -1 || err != nil {
		return rankErrorf("WaitAny over nothing: %d %v", i, err)
	}
	return c.Barrier()
}

// waitAny: receives from every rank complete in some order; WaitAny returns each once with its
// status, and TestAll reports them all done.
func waitAny(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	recvs := make([]*comm.Request, n)
	bufs := make([][]int64, n)
	for src := range n {
		bufs[src] = make([]int64, 1)
		var err error
		if recvs[src], err = comm.Irecv(c, bufs[src], src, 70); err != nil {
			return err
		}
	}
	var sends []*comm.Request
	for dst := n - 1; dst >= 0; dst-- {
		s, err := comm.Isend(c, []int64{int64(me*1000 + dst)}, dst, 70)
		if err != nil {
			return err
		}
		sends = append(sends, s)
	}
	pending := append([]*comm.Request(nil), recvs...)
	for range n {
		i, st, err := comm.WaitAny(pending...)
		if err != nil {
			return err
		}
		if i < 0 || pending[i] == nil || st.Source != i || bufs[i][0] != int64(i*1000+me) {
			return rankErrorf("WaitAny: index %d status %+v", i, st)
		}
		pending[i] = nil
	}
	if done, err := comm.TestAll(recvs...); !done || err != nil {
		return rankErrorf("TestAll after every WaitAny: %v %v", done, err)
	}
	return comm.WaitAll(sends...)
}

// postedFirst: a receive posted before its message arrives takes it; a later receive gets the
// next one.
func postedFirst(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	to, from := (me+1)%n, (me-1+n)%n
	first := make([]int64, 1)
	r, err := comm.Irecv(c, first, from, comm.AnyTag)
	if err != nil {
		return err
	}
	if err := c.Barrier(); err != nil { // every receive is posted before anything is sent
		return err
	}
	s1, err := comm.Isend(c, []int64{1}, to, 4)
	if err != nil {
		return err
	}
	s2, err := comm.Isend(c, []int64{2}, to, 4)
	if err != nil {
		return err
	}
	second := make([]int64, 1)
	if _, err := comm.Recv(c, second, from, 4); err != nil {
		return err
	}
	if _, err := r.Wait(); err != nil {
		return err
	}
	if first[0] != 1 || second[0] != 2 {
		return rankErrorf("posted receive got %d, later receive %d; want 1, 2", first[0], second[0])
	}
	return comm.WaitAll(s1, s2)
}

func TestInProcessGoroutines(t *testing.T) {
	forJobs(t, jobShapes[:2], inProcRanks, goroutinesOnOneComm)
}

// goroutinesOnOneComm: several goroutines per rank send and receive on one communicator at
// once, each on its own tag, across eager and rendezvous sizes; every payload is checked.
func goroutinesOnOneComm(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	const workers, rounds = 4, 20
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			right, left := (me+1)%n, (me-1+n)%n
			in := make([]byte, 200000)
			for k := range rounds {
				size := []int{0, 8, 1000, 20000, 200000}[(g+k+me)%5]
				st, err := comm.Sendrecv(c, pattern(make([]byte, size), g*1000+k), right, g, in, left, g)
				if err == nil {
					err = samePattern(in[:st.Count], g*1000+k, fmt.Sprintf("goroutine %d round %d", g, k))
				}
				if err != nil {
					errs[g] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
