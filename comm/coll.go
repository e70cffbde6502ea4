package comm

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/rank"
)

// Collectives are called by every rank of the communicator, in the same order, with matching
// arguments (the same root, the same op, counts that fit). They run in the communicator's
// collective context, apart from its point-to-point traffic. Like MPI, one goroutine at a time
// may run collectives on one communicator.
//
// The algorithm is chosen per call from the message size and the number of ranks (see
// collective/table.go); GORUN_<OP>_ALGO forces one, e.g. GORUN_ALLREDUCE_ALGO=ring (an
// unknown name makes every collective fail with an error naming the variable).
//
// Arguments are checked on each rank before anything is sent: a buffer of the wrong length is
// an ErrBuffer error, an op not defined on the element type ErrOp, a root out of range ErrRank.
// Disagreement between ranks (different counts, roots, ops) cannot be seen locally; with
// GORUN_CHECK=1 every collective first agrees on its arguments with the other ranks (one small
// allreduce, about log2(n) message latencies per call, so it is off by default) and every rank
// then gets ErrMismatch, or its own argument error, instead of a hang or wrong data.

// ErrMismatch: with GORUN_CHECK=1, the ranks of a collective call disagreed on the operation,
// count, root, op or element type, or another rank's arguments were rejected.
var ErrMismatch = collective.ErrMismatch

// engine is the collective engine of this process: the default decision table with the
// environment's overrides, read once, the same on every rank that has the same environment.
var engine = sync.OnceValues(func() (*collective.Engine, error) {
	return collective.NewEngine(os.Getenv)
})

// What collective's algorithms see of a communicator: it finds NodeAware by a type assertion
// (Engine.aware), so the check that collView has it is made here, at compile time.
var (
	_ collective.Comm      = (*collView)(nil)
	_ collective.NodeAware = (*collView)(nil)
	_ collective.Request   = (*collRequest)(nil)
	_ collective.Node      = (*rank.NodeArena)(nil)
)

// collView is a Comm as the collective algorithms see it: bytes, ranks of the communicator,
// the collective context.
type collView Comm

func (v *collView) Rank() int { return v.rank }
func (v *collView) Size() int { return v.size }

func (v *collView) Send(buf []byte, dst, tag int) error {
	c := (*Comm)(v)
	return c.w.Send(c.ctx+1, c.worldRank(dst), tag, buf, false)
}

func (v *collView) Recv(buf []byte, src, tag int) (int, error) {
	c := (*Comm)(v)
	st, err := c.w.Recv(c.ctx+1, c.worldRank(src), tag, buf)
	return st.Bytes, err
}

func (v *collView) Sendrecv(send []byte, dst, stag int, recv []byte, src, rtag int) (int, error) {
	c := (*Comm)(v)
	st, err := c.w.Sendrecv(c.ctx+1, send, c.worldRank(dst), stag, recv, c.worldRank(src), rtag)
	return st.Bytes, err
}

func (v *collView) Isend(buf []byte, dst, tag int) (collective.Request, error) {
	c := (*Comm)(v)
	r, err := c.w.Isend(c.ctx+1, c.worldRank(dst), tag, buf, false)
	if err != nil {
		return nil, err
	}
	return (*collRequest)(r), nil
}

func (v *collView) Irecv(buf []byte, src, tag int) (collective.Request, error) {
	c := (*Comm)(v)
	r, err := c.w.Irecv(c.ctx+1, c.worldRank(src), tag, buf)
	if err != nil {
		return nil, err
	}
	return (*collRequest)(r), nil
}

// collRequest is a runtime request as the algorithms see it.
type collRequest rank.Request

// Wait is the algorithm's one wait on the request (collective.Request's contract), after
// which nothing refers to it: the request goes back to the world's pool.
func (q *collRequest) Wait() (int, error) {
	r := (*rank.Request)(q)
	st, err := r.Wait(context.Background())
	r.Release()
	return st.Bytes, err
}

func (c *Comm) coll() collective.Comm { return (*collView)(c) }

// begin starts a collective call on c: c must be open; with GORUN_CHECK=1 the ranks agree on
// sig and learn whether any rank's arguments failed (local: this rank's verdict); otherwise a
// local error is returned at once, before anything is sent. A call that began must end: the
// world's collectives write into the node's shared memory between their waits, and Close
// waits for every collective that began to end before it unmaps that memory.
func (c *Comm) begin(sig collective.Signature, local error) (*collective.Engine, error) {
	if err := c.check(0, false); err != nil {
		return nil, err
	}
	e, err := engine()
	if err != nil {
		return nil, err
	}
	if err := c.w.Enter(); err != nil {
		return nil, err
	}
	if e.Checking() {
		err = collective.Verify(c.coll(), sig, local)
	} else {
		err = local
	}
	if err != nil {
		c.end()
		return nil, err
	}
	return e, nil
}

// end ends a collective call that began.
func (c *Comm) end() { c.w.Leave() }

// rootErr reports a root outside c.
func (c *Comm) rootErr(root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("%w: root %d not in [0, %d)", ErrRank, root, c.size)
	}
	return nil
}

// firstErr returns the first error that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func sig[T any](coll collective.Coll, count, root int, op Op) collective.Signature {
	return collective.Signature{Coll: coll, Count: count, Root: root, Op: op, Elem: sizeOf[T]()}
}

func reducer[T Number](op Op) (collective.Reducer, error) {
	return collective.NewReducer(op, kindOf[T](), sizeOf[T]())
}

// Barrier returns once every rank of c has entered it.
func (c *Comm) Barrier() error {
	e, err := c.begin(collective.Signature{Coll: collective.CollBarrier}, nil)
	if err != nil {
		return err
	}
	defer c.end()
	return e.Barrier(c.coll())
}

// Bcast copies buf from root into buf on every rank. Every rank passes a buffer of the same
// length.
func Bcast[T any](c *Comm, buf []T, root int) error {
	e, err := c.begin(sig[T](collective.CollBcast, len(buf), root, 0), firstErr(checkType[T](), c.rootErr(root)))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Bcast(c.coll(), bytesOf(buf), root)
}

// Reduce leaves in recv at root the elementwise reduction by op of every rank's send. At the
// root recv has the length of send (it may be the same slice); elsewhere it is not used.
func Reduce[T Number](c *Comm, send, recv []T, op Op, root int) error {
	r, rerr := reducer[T](op)
	var berr error
	if c.rank == root && len(recv) != len(send) {
		berr = fmt.Errorf("%w: Reduce of %d elements into %d at the root", ErrBuffer, len(send), len(recv))
	}
	e, err := c.begin(sig[T](collective.CollReduce, len(send), root, op), firstErr(c.rootErr(root), rerr, berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Reduce(c.coll(), bytesOf(send), bytesOf(recv), r, root)
}

// Allreduce leaves in recv, on every rank, the elementwise reduction by op of every rank's
// send. send and recv have the same length and may be the same slice (in place). Every rank
// gets the same bits, floating point included.
func Allreduce[T Number](c *Comm, send, recv []T, op Op) error {
	r, rerr := reducer[T](op)
	var berr error
	if len(send) != len(recv) {
		berr = fmt.Errorf("%w: Allreduce of %d elements into %d", ErrBuffer, len(send), len(recv))
	}
	e, err := c.begin(sig[T](collective.CollAllreduce, len(send), 0, op), firstErr(rerr, berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Allreduce(c.coll(), bytesOf(send), bytesOf(recv), r)
}

// Gather collects every rank's send into recv at root, in rank order: recv holds
// Size()*len(send) elements at the root and is not used elsewhere. Every rank sends the same
// count.
func Gather[T any](c *Comm, send, recv []T, root int) error {
	var berr error
	if c.rank == root && len(recv) != c.size*len(send) {
		berr = fmt.Errorf("%w: Gather of %d×%d elements into %d at the root", ErrBuffer, c.size, len(send), len(recv))
	}
	e, err := c.begin(sig[T](collective.CollGather, len(send), root, 0), firstErr(checkType[T](), c.rootErr(root), berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Gather(c.coll(), bytesOf(send), bytesOf(recv), root)
}

// Scatter hands block i of send at root (Size()*len(recv) elements; not used elsewhere) to
// rank i's recv.
func Scatter[T any](c *Comm, send, recv []T, root int) error {
	var berr error
	if c.rank == root && len(send) != c.size*len(recv) {
		berr = fmt.Errorf("%w: Scatter of %d elements into %d×%d at the root", ErrBuffer, len(send), c.size, len(recv))
	}
	e, err := c.begin(sig[T](collective.CollScatter, len(recv), root, 0), firstErr(checkType[T](), c.rootErr(root), berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Scatter(c.coll(), bytesOf(send), bytesOf(recv), root)
}

// Allgather leaves in recv (Size()*len(send) elements) on every rank the send of every rank:
// block i comes from rank i.
func Allgather[T any](c *Comm, send, recv []T) error {
	var berr error
	if len(recv) != c.size*len(send) {
		berr = fmt.Errorf("%w: Allgather of %d×%d elements into %d", ErrBuffer, c.size, len(send), len(recv))
	}
	e, err := c.begin(sig[T](collective.CollAllgather, len(send), 0, 0), firstErr(checkType[T](), berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Allgather(c.coll(), bytesOf(send), bytesOf(recv))
}

// Alltoall sends block j of send to rank j and leaves in block i of recv what rank i sent this
// rank. send and recv both hold Size() blocks of the same length and must not overlap.
func Alltoall[T any](c *Comm, send, recv []T) error {
	var berr error
	if len(send) != len(recv) || len(send)%c.size != 0 {
		berr = fmt.Errorf("%w: Alltoall of %d elements into %d among %d ranks", ErrBuffer, len(send), len(recv), c.size)
	}
	e, err := c.begin(sig[T](collective.CollAlltoall, len(send), 0, 0), firstErr(checkType[T](), berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Alltoall(c.coll(), bytesOf(send), bytesOf(recv))
}

// ReduceScatterBlock reduces by op every rank's send (Size()*len(recv) elements) and leaves
// block i of the result in rank i's recv.
func ReduceScatterBlock[T Number](c *Comm, send, recv []T, op Op) error {
	r, rerr := reducer[T](op)
	var berr error
	if len(send) != c.size*len(recv) {
		berr = fmt.Errorf("%w: ReduceScatterBlock of %d elements into %d×%d", ErrBuffer, len(send), c.size, len(recv))
	}
	e, err := c.begin(sig[T](collective.CollReduceScatter, len(recv), 0, op), firstErr(rerr, berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.ReduceScatterBlock(c.coll(), bytesOf(send), bytesOf(recv), r)
}

// Scan leaves in recv at rank i the elementwise reduction by op of send over ranks 0…i (an
// inclusive prefix). send and recv have the same length and may be the same slice.
func Scan[T Number](c *Comm, send, recv []T, op Op) error {
	r, rerr := reducer[T](op)
	var berr error
	if len(send) != len(recv) {
		berr = fmt.Errorf("%w: Scan of %d elements into %d", ErrBuffer, len(send), len(recv))
	}
	e, err := c.begin(sig[T](collective.CollScan, len(send), 0, op), firstErr(rerr, berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Scan(c.coll(), bytesOf(send), bytesOf(recv), r)
}
