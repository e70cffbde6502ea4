package rank

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// AnySource and AnyTag are the wildcards a receive or probe may use.
const (
	AnySource = -1
	AnyTag    = -1
)

type opKind uint8

const (
	opSend opKind = iota + 1
	opRecv
	opProbe
)

// Status describes a received (or probed) message.
type Status struct {
	Source int // world rank of the sender
	Tag    int
	Bytes  int // message size in bytes (a truncated receive got fewer)
}

// Request is one send, receive or probe in flight. Its buffer belongs to the request until it
// completes. A Request is safe for concurrent use: any number of goroutines may Test it; it
// is completed exactly once (by a transport, the matching engine, or a cancel).
type Request struct {
	w    *World
	op   opKind
	ctx  uint32
	peer int // destination of a send; source (or AnySource) of a receive or probe
	tag  int
	buf  []byte

	// Guarded by the matcher's lock while the request is posted.
	prev, next *Request
	posted     bool

	// The result: written by whoever completes the request, before done is set, and read only
	// after done is seen set (done's store and load order them).
	status Status
	trunc  bool
	err    error
	done   atomic.Uint32

	// wake is signalled (without blocking: capacity 1) after done is set if parked says a
	// goroutine may be blocked on it. The waiter sets parked before its last check of done,
	// the completer stores done before it reads parked (both sequentially consistent), so
	// a parked waiter is always signalled. A stale signal left in wake only makes a later
	// wait re-check done, so wake is never drained.
	wake   chan struct{}
	parked atomic.Uint32
	// isDone is r.Done as a function value, made once: a method value built at each wait
	// would escape (waits pass it through the Poller interface) and allocate every time.
	isDone func() bool
	// group, when set, is also signalled on completion: WaitAny's shared channel.
	group atomic.Pointer[chan struct{}]
}

func newRequest(w *World) *Request {
	r := &Request{w: w, wake: make(chan struct{}, 1)}
	r.isDone = r.Done
	return r
}

// reset prepares a pooled request for another operation.
func (r *Request) reset(op opKind, ctx uint32, peer, tag int, buf []byte) {
	r.op, r.ctx, r.peer, r.tag, r.buf = op, ctx, peer, tag, buf
	r.prev, r.next, r.posted = nil, nil, false
	r.status, r.trunc, r.err = Status{}, false, nil
	r.done.Store(0)
}

// Complete implements transport.Completion. It publishes the result, then wakes whoever waits.
// Nothing in r may be touched after done is set except the wake channel (never replaced) and
// the parked and group words (atomic): a waiter may recycle r the moment it sees done.
func (r *Request) Complete(err error) {
	switch {
	case err == nil && r.trunc:
		err = &TruncateError{Size: r.status.Bytes, Cap: len(r.buf)}
	case err != nil && !isRuntimeError(err):
		// A transport failed: the peer it talks to is unreachable.
		peer := r.peer
		if r.op != opSend {
			peer = r.status.Source
		}
		err = &PeerLostError{Rank: peer, Err: err}
		if closable(r.ctx) && r.w.closing.Load() {
			// Close has begun and ends what the program left pending, as closed; a peer
			// that finished its own Close and exited may be noticed first. Both are said.
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
	}
	r.err = err
	w, wake := r.w, r.wake
	r.done.Store(1)
	if r.parked.Load() != 0 {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	// group is read after done is published, so a WaitAny that set it and then saw done unset
	// is sure to be signalled. Only user requests (never recycled) have a group.
	if group := r.group.Load(); group != nil {
		select {
		case *group <- struct{}{}:
		default:
		}
	}
	w.kick()
}

// Release gives a completed request back to its world for reuse by later operations; the
// caller must not touch it again. One still in flight (its wait ended early because Close
// began) is left to the transport that holds it. Requests that a WaitAny may have grouped
// (the program's) are never released.
func (r *Request) Release() { r.w.recycle(r) }

// Done reports whether the request has completed.
func (r *Request) Done() bool { return r.done.Load() != 0 }

// Result returns the status and error of a completed request. Call it only after Done
// reported true or Wait returned nil.
func (r *Request) Result() (Status, error) { return r.status, r.err }

// Wait blocks until the request completes or ctx ends. If ctx ends first it returns ctx's
// error and the request stays in flight: it can be waited again or, if it is an unmatched
// receive, canceled.
func (r *Request) Wait(ctx context.Context) (Status, error) {
	if r.done.Load() == 0 {
		if err := r.w.wait(ctx, r.isDone, r.wake, &r.parked, closable(r.ctx)); err != nil {
			return Status{}, err
		}
	}
	return r.status, r.err
}

// WaitAny blocks until one of reqs completes (or ctx ends) and returns its index. Requests
// that are nil are skipped; if all are nil it returns -1. All reqs must belong to one World.
func WaitAny(ctx context.Context, reqs []*Request) (int, error) {
	var w *World
	for _, r := range reqs {
		if r != nil {
			w = r.w
			break
		}
	}
	if w == nil {
		return -1, nil
	}
	first := func() int {
		for i, r := range reqs {
			if r != nil && r.done.Load() != 0 {
				return i
			}
		}
		return -1
	}
	if i := first(); i >= 0 {
		return i, nil
	}
	group := make(chan struct{}, 1)
	for _, r := range reqs {
		if r != nil {
			r.group.Store(&group)
		}
	}
	defer func() {
		for _, r := range reqs {
			if r != nil {
				r.group.Store(nil)
			}
		}
	}()
	var parked atomic.Uint32 // the group channel is signalled whatever it says
	if err := w.wait(ctx, func() bool { return first() >= 0 }, group, &parked, true); err != nil {
		return -1, err
	}
	return first(), nil
}

// Test drives progress once and reports whether the request has completed.
func (r *Request) Test() bool {
	if r.done.Load() != 0 {
		return true
	}
	r.w.pollOnce()
	return r.done.Load() != 0
}

// Cancel withdraws a receive or probe that has not matched yet; it then completes with
// ErrCanceled. It reports whether it canceled: a request that already matched, or a send,
// cannot be canceled and runs to completion.
func (r *Request) Cancel() bool {
	if r.op == opSend {
		return false
	}
	// Completing rings the driver's doorbell, in the segment: an entry section keeps Close
	// from unmapping it meanwhile. Once Close has begun there is nothing left to cancel: the
	// receive has been (or is being) completed with ErrClosed.
	if r.w.enter(r.ctx) != nil {
		return false
	}
	defer r.w.leave()
	if !r.w.m.withdraw(r) {
		return false
	}
	r.Complete(ErrCanceled)
	return true
}

// isRuntimeError reports whether err is one of the runtime's own errors rather than a
// transport's.
func isRuntimeError(err error) bool {
	for _, e := range []error{ErrPeerLost, ErrCanceled, ErrTruncate, ErrClosed, ErrAborted} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
