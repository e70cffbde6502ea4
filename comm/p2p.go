package comm

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-multierror"

	"github.com/gorun-hpc/gorun/rank"
)

// Wildcards for receives and probes.
const (
	AnySource = rank.AnySource
	AnyTag    = rank.AnyTag
)

// Status describes a received message.
type Status struct {
	Source int // the sender's rank in the communicator
	Tag    int
	// Count is the number of elements of the receive's type delivered (for Probe: bytes,
	// since no element type is known).
	Count int
}

// status converts the runtime's status of a receive into T elements. A message whose size is
// not a whole number of elements is an ErrCount error (its bytes were delivered).
func (c *Comm) status(st rank.Status, err error, elemSize, capBytes int) (Status, error) {
	s := Status{Source: c.commRank(st.Source), Tag: st.Tag, Count: min(st.Bytes, capBytes) / elemSize}
	if err == nil && st.Bytes%elemSize != 0 {
		err = fmt.Errorf("%w: %d bytes into elements of %d bytes", ErrCount, st.Bytes, elemSize)
	}
	return s, err
}

// Send sends buf to rank dst with tag (standard mode: a small message is buffered and Send
// returns at once; a large one waits until the receiver has matched it).
func Send[T Elem](c *Comm, buf []T, dst, tag int) error {
	if err := c.check(dst, false); err != nil {
		return err
	}
	if err := checkTag(tag, false); err != nil {
		return err
	}
	return c.w.Send(c.ctx, c.worldRank(dst), tag, bytesOf(buf), false)
}

// Ssend is a synchronous send: it returns only once the matching receive has started.
func Ssend[T Elem](c *Comm, buf []T, dst, tag int) error {
	if err := c.check(dst, false); err != nil {
		return err
	}
	if err := checkTag(tag, false); err != nil {
		return err
	}
	return c.w.Send(c.ctx, c.worldRank(dst), tag, bytesOf(buf), true)
}

// Recv receives into buf a message from rank src (or AnySource) with tag (or AnyTag). A
// message larger than buf fills buf and returns a *TruncateError (ErrTruncate).
func Recv[T Elem](c *Comm, buf []T, src, tag int) (Status, error) {
	if err := c.check(src, true); err != nil {
		return Status{}, err
	}
	if err := checkTag(tag, true); err != nil {
		return Status{}, err
	}
	b := bytesOf(buf)
	st, err := c.w.Recv(c.ctx, c.worldRank(src), tag, b)
	return c.status(st, err, sizeOf[T](), len(b))
}

// Sendrecv sends send to dst and receives into recv from src at once: two ranks exchanging
// with each other never deadlock.
func Sendrecv[T Elem](c *Comm, send []T, dst, stag int, recv []T, src, rtag int) (Status, error) {
	if err := c.check(dst, false); err != nil {
		return Status{}, err
	}
	if err := c.check(src, true); err != nil {
		return Status{}, err
	}
	if err := checkTag(stag, false); err != nil {
		return Status{}, err
	}
	if err := checkTag(rtag, true); err != nil {
		return Status{}, err
	}
	rb := bytesOf(recv)
	st, err := c.w.Sendrecv(c.ctx, bytesOf(send), c.worldRank(dst), stag, rb, c.worldRank(src), rtag)
	return c.status(st, err, sizeOf[T](), len(rb))
}

// Request is a nonblocking send or receive in flight. Its buffer belongs to the request until
// it completes. A Request may be waited or tested from any goroutine.
type Request struct {
	r        *rank.Request
	c        *Comm
	elemSize int
	capBytes int
	recv     bool
}

// Isend starts a standard-mode send and returns at once.
func Isend[T Elem](c *Comm, buf []T, dst, tag int) (*Request, error) {
	return isend(c, buf, dst, tag, false)
}

// Issend starts a synchronous send: it completes once the matching receive has started.
func Issend[T Elem](c *Comm, buf []T, dst, tag int) (*Request, error) {
	return isend(c, buf, dst, tag, true)
}

func isend[T Elem](c *Comm, buf []T, dst, tag int, sync bool) (*Request, error) {
	if err := c.check(dst, false); err != nil {
		return nil, err
	}
	if err := checkTag(tag, false); err != nil {
		return nil, err
	}
	b := bytesOf(buf)
	r, err := c.w.Isend(c.ctx, c.worldRank(dst), tag, b, sync)
	if err != nil {
		return nil, err
	}
	return &Request{r: r, c: c, elemSize: sizeOf[T](), capBytes: len(b)}, nil
}

// Irecv starts a receive and returns at once.
func Irecv[T Elem](c *Comm, buf []T, src, tag int) (*Request, error) {
	if err := c.check(src, true); err != nil {
		return nil, err
	}
	if err := checkTag(tag, true); err != nil {
		return nil, err
	}
	b := bytesOf(buf)
	r, err := c.w.Irecv(c.ctx, c.worldRank(src), tag, b)
	if err != nil {
		return nil, err
	}
	return &Request{r: r, c: c, elemSize: sizeOf[T](), capBytes: len(b), recv: true}, nil
}

// Wait blocks until the request completes.
func (q *Request) Wait() (Status, error) { return q.WaitContext(context.Background()) }

// WaitContext blocks until the request completes or ctx ends. If ctx ends first it returns
// ctx.Err() and the request stays in flight: wait for it again, or Cancel an unmatched
// receive; its buffer still belongs to it until then.
func (q *Request) WaitContext(ctx context.Context) (Status, error) {
	st, err := q.r.Wait(ctx)
	if !q.r.Done() {
		return Status{}, err
	}
	return q.result(st, err)
}

func (q *Request) result(st rank.Status, err error) (Status, error) {
	if !q.recv {
		return Status{}, err
	}
	return q.c.status(st, err, q.elemSize, q.capBytes)
}

// Test drives progress once and reports whether the request has completed, with its status
// and error if so.
func (q *Request) Test() (bool, Status, error) {
	if !q.r.Test() {
		return false, Status{}, nil
	}
	st, err := q.result(q.r.Result())
	return true, st, err
}

// Cancel withdraws a receive that has not matched yet (it then completes with ErrCanceled)
// and reports whether it did. Sends and receives already matched run to completion.
func (q *Request) Cancel() bool { return q.r.Cancel() }

// WaitAll waits for every request and returns the errors of all that failed, joined. Nil
// requests are skipped.
func WaitAll(reqs ...*Request) error {
	var errs error
	for i, q := range reqs {
		if q == nil {
			continue
		}
		if _, err := q.Wait(); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("request %d: %w", i, err))
		}
	}
	return errs
}

// WaitAny waits until one of the requests completes and returns its index, status and error.
// Nil requests are skipped; with none left it returns -1.
func WaitAny(reqs ...*Request) (int, Status, error) {
	rs := make([]*rank.Request, len(reqs))
	for i, q := range reqs {
		if q != nil {
			rs[i] = q.r
		}
	}
	i, err := rank.WaitAny(context.Background(), rs)
	if i < 0 || err != nil {
		return i, Status{}, err
	}
	st, err := reqs[i].result(reqs[i].r.Result())
	return i, st, err
}

// TestAll drives progress once and reports whether every request has completed; if so it
// returns their errors, joined.
func TestAll(reqs ...*Request) (bool, error) {
	all := true
	for _, q := range reqs {
		if q != nil && !q.r.Test() {
			all = false
		}
	}
	if !all {
		return false, nil
	}
	return true, WaitAll(reqs...)
}

// Probe blocks until a message from src (or AnySource) with tag (or AnyTag) can be received,
// and describes it without receiving it: a Recv with the returned Source and Tag gets exactly
// that message (unless another goroutine receives it first). Count is in bytes.
func Probe(c *Comm, src, tag int) (Status, error) {
	return ProbeContext(context.Background(), c, src, tag)
}

// ProbeContext is Probe that gives up when ctx ends.
func ProbeContext(ctx context.Context, c *Comm, src, tag int) (Status, error) {
	if err := c.check(src, true); err != nil {
		return Status{}, err
	}
	if err := checkTag(tag, true); err != nil {
		return Status{}, err
	}
	st, err := c.w.Probe(ctx, c.ctx, c.worldRank(src), tag)
	return Status{Source: c.commRank(st.Source), Tag: st.Tag, Count: st.Bytes}, err
}

// Iprobe reports whether Probe would return at once, and what it would return.
func Iprobe(c *Comm, src, tag int) (bool, Status, error) {
	if err := c.check(src, true); err != nil {
		return false, Status{}, err
	}
	if err := checkTag(tag, true); err != nil {
		return false, Status{}, err
	}
	st, ok, err := c.w.Iprobe(c.ctx, c.worldRank(src), tag)
	if !ok || err != nil {
		return false, Status{}, err
	}
	return true, Status{Source: c.commRank(st.Source), Tag: st.Tag, Count: st.Bytes}, nil
}
