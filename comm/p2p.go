package comm

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-multierror"

	"github.com/gorun-hpc/gorun/rank"
)

// Wildcards for receives and probes, and the rank that is nobody.
const (
	AnySource = rank.AnySource
	AnyTag    = rank.AnyTag
	// ProcNull is a rank that is nobody (MPI_PROC_NULL), for code at an edge (a Cartesian
	// shift past the end gives it): a send to ProcNull completes at once and sends nothing; a
	// receive, probe or Sendrecv side from it completes at once with nullStatus,
	// {Source: ProcNull, Tag: AnyTag, Count: 0}, and leaves the buffer as it was. Tags are
	// still checked. Collectives do not take it.
	ProcNull = rank.ProcNull
)

// nullStatus is what a receive or probe from ProcNull returns.
var nullStatus = Status{Source: ProcNull, Tag: AnyTag}

// Status describes a received message.
type Status struct {
	Source int // the sender's rank in the communicator
	Tag    int
	// Count is the number of elements of the receive's type delivered (for Probe: bytes,
	// since no element type is known).
	Count int
}

// status converts the runtime's status of a receive into T elements. A message whose size is
// not a whole number of elements is an ErrCount error (its bytes were delivered). Elements of
// size 0 (struct{}) count 0, and only an empty message is a whole number of them.
func (c *Comm) status(st rank.Status, err error, elemSize, capBytes int) (Status, error) {
	s := Status{Source: st.Source, Tag: st.Tag}
	if s.Source != ProcNull {
		s.Source = c.commRank(st.Source)
	}
	if elemSize > 0 {
		s.Count = min(st.Bytes, capBytes) / elemSize
	}
	if err == nil && (elemSize == 0 && st.Bytes != 0 || elemSize > 0 && st.Bytes%elemSize != 0) {
		err = fmt.Errorf("%w: %d bytes into elements of %d bytes", ErrCount, st.Bytes, elemSize)
	}
	return s, err
}

// checkSend checks a send's element type, communicator, destination (ProcNull allowed) and
// tag, in that order, and reports whether dst is ProcNull.
func checkSend[T any](c *Comm, dst, tag int) (null bool, err error) {
	if err := checkType[T](); err != nil {
		return false, err
	}
	return dst == ProcNull, checkPeer(c, dst, false, tag)
}

// checkRecv is checkSend for a receive, whose source and tag may also be wildcards.
func checkRecv[T any](c *Comm, src, tag int) (null bool, err error) {
	if err := checkType[T](); err != nil {
		return false, err
	}
	return src == ProcNull, checkPeer(c, src, true, tag)
}

// checkPeer checks the communicator, a peer (ProcNull allowed; AnySource and AnyTag too where
// wild) and a tag.
func checkPeer(c *Comm, peer int, wild bool, tag int) error {
	p := peer
	if p == ProcNull {
		p = AnySource // only the communicator is left to check
	}
	if err := c.check(p, wild || peer == ProcNull); err != nil {
		return err
	}
	return checkTag(tag, wild)
}

// Send sends buf to rank dst with tag (standard mode: a small message is buffered and Send
// returns at once; a large one waits until the receiver has matched it). T is any
// pointer-free type (see ErrType); to ProcNull it returns nil at once.
func Send[T any](c *Comm, buf []T, dst, tag int) error {
	null, err := checkSend[T](c, dst, tag)
	if err != nil || null {
		return err
	}
	return c.w.Send(c.ctx, c.worldRank(dst), tag, bytesOf(buf), false)
}

// Ssend is a synchronous send: it returns only once the matching receive has started.
func Ssend[T any](c *Comm, buf []T, dst, tag int) error {
	null, err := checkSend[T](c, dst, tag)
	if err != nil || null {
		return err
	}
	return c.w.Send(c.ctx, c.worldRank(dst), tag, bytesOf(buf), true)
}

// Recv receives into buf a message from rank src (or AnySource) with tag (or AnyTag). A
// message larger than buf fills buf and returns a *TruncateError (ErrTruncate). From ProcNull
// it returns {Source: ProcNull, Tag: AnyTag, Count: 0} at once.
func Recv[T any](c *Comm, buf []T, src, tag int) (Status, error) {
	null, err := checkRecv[T](c, src, tag)
	if err != nil || null {
		return nullOr(null), err
	}
	b := bytesOf(buf)
	st, err := c.w.Recv(c.ctx, c.worldRank(src), tag, b)
	return c.status(st, err, sizeOf[T](), len(b))
}

// nullOr is the status of a call that ends before it communicates: nullStatus from ProcNull,
// the zero Status after an error.
func nullOr(null bool) Status {
	if null {
		return nullStatus
	}
	return Status{}
}

// Sendrecv sends send to dst and receives into recv from src at once: two ranks exchanging
// with each other never deadlock. Either side may be ProcNull, which leaves only the other.
func Sendrecv[T any](c *Comm, send []T, dst, stag int, recv []T, src, rtag int) (Status, error) {
	sendNull, err := checkSend[T](c, dst, stag)
	if err != nil {
		return Status{}, err
	}
	recvNull, err := checkRecv[T](c, src, rtag)
	switch {
	case err != nil:
		return Status{}, err
	case recvNull:
		if sendNull {
			return nullStatus, nil
		}
		return nullStatus, c.w.Send(c.ctx, c.worldRank(dst), stag, bytesOf(send), false)
	}
	rb := bytesOf(recv)
	var st rank.Status
	if sendNull {
		st, err = c.w.Recv(c.ctx, c.worldRank(src), rtag, rb)
	} else {
		st, err = c.w.Sendrecv(c.ctx, bytesOf(send), c.worldRank(dst), stag, rb, c.worldRank(src), rtag)
	}
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

// Isend starts a standard-mode send and returns at once. To ProcNull the request has
// already completed.
func Isend[T any](c *Comm, buf []T, dst, tag int) (*Request, error) {
	return isend(c, buf, dst, tag, false)
}

// Issend starts a synchronous send: it completes once the matching receive has started.
func Issend[T any](c *Comm, buf []T, dst, tag int) (*Request, error) {
	return isend(c, buf, dst, tag, true)
}

func isend[T any](c *Comm, buf []T, dst, tag int, sync bool) (*Request, error) {
	null, err := checkSend[T](c, dst, tag)
	if err != nil {
		return nil, err
	}
	b := bytesOf(buf)
	q := &Request{c: c, elemSize: sizeOf[T](), capBytes: len(b)}
	if null {
		q.r = c.w.NullRequest(false)
		return q, nil
	}
	if q.r, err = c.w.Isend(c.ctx, c.worldRank(dst), tag, b, sync); err != nil {
		return nil, err
	}
	return q, nil
}

// Irecv starts a receive and returns at once. From ProcNull the request has already
// completed, with the status Recv would return.
func Irecv[T any](c *Comm, buf []T, src, tag int) (*Request, error) {
	null, err := checkRecv[T](c, src, tag)
	if err != nil {
		return nil, err
	}
	b := bytesOf(buf)
	q := &Request{c: c, elemSize: sizeOf[T](), capBytes: len(b), recv: true}
	if null {
		q.r = c.w.NullRequest(true)
		return q, nil
	}
	if q.r, err = c.w.Irecv(c.ctx, c.worldRank(src), tag, b); err != nil {
		return nil, err
	}
	return q, nil
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
// that message (unless another goroutine receives it first). Count is in bytes. From ProcNull
// it returns {Source: ProcNull, Tag: AnyTag, Count: 0} at once (Iprobe: true).
func Probe(c *Comm, src, tag int) (Status, error) {
	return ProbeContext(context.Background(), c, src, tag)
}

// ProbeContext is Probe that gives up when ctx ends.
func ProbeContext(ctx context.Context, c *Comm, src, tag int) (Status, error) {
	if err := checkPeer(c, src, true, tag); err != nil || src == ProcNull {
		return nullOr(err == nil), err
	}
	st, err := c.w.Probe(ctx, c.ctx, c.worldRank(src), tag)
	return Status{Source: c.commRank(st.Source), Tag: st.Tag, Count: st.Bytes}, err
}

// Iprobe reports whether Probe would return at once, and what it would return.
func Iprobe(c *Comm, src, tag int) (bool, Status, error) {
	if err := checkPeer(c, src, true, tag); err != nil || src == ProcNull {
		return err == nil, nullOr(err == nil), err
	}
	st, ok, err := c.w.Iprobe(c.ctx, c.worldRank(src), tag)
	if !ok || err != nil {
		return false, Status{}, err
	}
	return true, Status{Source: c.commRank(st.Source), Tag: st.Tag, Count: st.Bytes}, nil
}
