// Package collective holds the algorithms behind comm's collective operations: barrier,
// broadcast, reductions, gathers and the rest. It does no I/O of its own: every algorithm runs
// over the narrow Comm interface that comm gives it (point-to-point on bytes, in the
// communicator's collective context), so each can be tested over an in-process transport
// under the race detector.
//
// Buffers are bytes; element types reach the reduction kernels as a Kind, and the caller
// views its typed slices as bytes (see internal/view).
//
// Every algorithm is correct for any number of ranks (not only powers of two) and any count,
// including zero and counts not divisible by the number of ranks. Reductions combine operands
// in rank order (the part of lower ranks on the left), so a non-commutative user function sees
// rank order, and every rank of an Allreduce gets the same bits. An Engine picks the algorithm
// per call from a decision table (see table.go), which the environment can override.
package collective

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gorun-hpc/gorun/internal/view"
)

// Comm is what an algorithm needs from a communicator. Ranks are the communicator's. Messages
// between a pair are never reordered, and receives from one source with one tag match that
// source's messages in the order the receives were posted; tags keep the steps of one
// algorithm apart. Blocking Send may wait until the receiver has matched the message
// (rendezvous), so no algorithm relies on a send being buffered.
type Comm interface {
	Rank() int
	Size() int
	Send(buf []byte, dst, tag int) error
	// Recv receives into buf from src and returns the number of bytes received.
	Recv(buf []byte, src, tag int) (int, error)
	// Sendrecv sends and receives at once, so two ranks exchanging never deadlock.
	Sendrecv(send []byte, dst, stag int, recv []byte, src, rtag int) (int, error)
	// Isend and Irecv start a send or a receive and return at once. The buffer belongs to the
	// request until its Wait returns.
	Isend(buf []byte, dst, tag int) (Request, error)
	Irecv(buf []byte, src, tag int) (Request, error)
}

// Request is a send or receive in flight.
type Request interface {
	// Wait blocks until the operation completes and returns the bytes received (0 for a
	// send). Call it exactly once.
	Wait() (int, error)
}

// errBuffer reports buffers whose lengths do not fit the operation (comm checks its callers'
// buffers before it gets here, with its own ErrBuffer; this one guards direct callers).
var errBuffer = errors.New("collective: buffer sizes do not fit the operation")

// Tags of the algorithms' messages. Collectives on one communicator run one at a time and in
// the same order on every rank, and messages between a pair are not reordered, so a tag per
// algorithm phase is enough to keep steps apart.
const (
	tagBarrier = iota + 1
	tagBcast
	tagAllreduce
	tagAllgather
	tagReduce
	tagGather
	tagScatter
	tagAlltoall
	tagScan
	tagReduceScatter
	tagBcastRing // the allgather phase of bcastScatterAllgather
	tagCheck     // Verify's exchange (GORUN_CHECK)
)

// scratch keeps the algorithms' temporary buffers for the next call. A fresh buffer of a few
// dozen KiB or more comes with fresh pages, each a page fault on first touch (several µs in a
// virtual machine), and a collective that allocated one per call paid more for the faults
// than for its copies: a forced ring allreduce of 64 KiB between two ranks took 107 µs with
// OSU's 100 iterations and 29 µs with 5 000, once the allocator recycled its pages.
var scratch sync.Pool // of *[]uint64

// alloc returns n zeroed bytes of scratch space aligned for any element type (8 bytes), so
// that view.As may reinterpret any element-aligned part of it. Give them back with release
// once no transfer uses them; a buffer not given back is simply garbage.
func alloc(n int) []byte {
	if n == 0 {
		return nil
	}
	words := (n + 7) / 8
	if p, _ := scratch.Get().(*[]uint64); p != nil && cap(*p) >= words {
		w := (*p)[:cap(*p)] // the whole buffer, so that release keeps all of it
		clear(w[:words])
		return view.Bytes(w)[:n]
	}
	return view.Bytes(make([]uint64, words))[:n]
}

// release gives back a buffer from alloc (nil is ignored). The caller must not use it after.
func release(b []byte) {
	if cap(b) == 0 {
		return
	}
	w := view.As[uint64](b[:cap(b)])
	scratch.Put(&w)
}

// sameSlice reports whether a and b are the same memory (an in-place operation).
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// waitAll waits for every request that is not nil, so that no buffer is still owned by a
// request when an algorithm returns, and joins the errors of those that failed.
func waitAll(reqs []Request) error {
	var errs []error
	for i, q := range reqs {
		if q == nil {
			continue
		}
		if _, err := q.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("request %d: %w", i, err))
		}
		reqs[i] = nil
	}
	return errors.Join(errs...)
}

// joinWait waits for the requests already started when starting another failed with err, and
// returns err together with their errors.
func joinWait(err error, reqs []Request) error {
	return errors.Join(err, waitAll(reqs))
}

// bufErr formats an errBuffer error.
func bufErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBuffer}, args...)...)
}

// checkRoot reports a root outside the communicator.
func checkRoot(c Comm, root int) error {
	if root < 0 || root >= c.Size() {
		return fmt.Errorf("collective: root %d not in [0, %d)", root, c.Size())
	}
	return nil
}

// pof2Below returns the largest power of two that is at most n (n ≥ 1).
func pof2Below(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// fold is how an algorithm built for a power-of-two number of ranks runs on any n: with p the
// largest power of two ≤ n and rem = n - p, each even rank among the first 2*rem hands its
// data to the odd rank above it and sits out; the p remaining ("active") ranks run the
// algorithm under new numbers 0..p-1. New numbers keep rank order, and active rank q < rem
// stands for the two ranks 2q, 2q+1, so a reduction over new ranks in order is a reduction
// over the old ones in order.
type fold struct {
	p, rem int
}

func newFold(n int) fold {
	p := pof2Below(n)
	return fold{p: p, rem: n - p}
}

// newRank is the active number of rank r, or -1 if r sits out.
func (f fold) newRank(r int) int {
	switch {
	case r >= 2*f.rem:
		return r - f.rem
	case r%2 == 1:
		return r / 2
	}
	return -1
}

// oldRank is the rank that runs as active rank q.
func (f fold) oldRank(q int) int {
	if q < f.rem {
		return 2*q + 1
	}
	return q + f.rem
}

// firstRank is the lowest rank that active rank q stands for (2q for a folded pair).
func (f fold) firstRank(q int) int {
	if q < f.rem {
		return 2 * q
	}
	return q + f.rem
}

// bitrev reverses the low log2(p) bits of j (p a power of two).
func bitrev(j, p int) int {
	r := 0
	for m := 1; m < p; m <<= 1 {
		r <<= 1
		if j&m != 0 {
			r |= 1
		}
	}
	return r
}
