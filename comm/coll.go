package comm

import (
	"fmt"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/internal/view"
)

// Collectives are called by every rank of the communicator, in the same order, with matching
// arguments (the same root, the same op, counts that fit). They run in the communicator's
// collective context, apart from its point-to-point traffic. Like MPI, one goroutine at a time
// may run collectives on one communicator.

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

func (c *Comm) coll() collective.Comm { return (*collView)(c) }

func (c *Comm) checkRoot(root int) error {
	if err := c.check(0, false); err != nil {
		return err
	}
	if root < 0 || root >= c.size {
		return fmt.Errorf("%w: root %d not in [0, %d)", ErrRank, root, c.size)
	}
	return nil
}

// Barrier returns once every rank of c has entered it.
func (c *Comm) Barrier() error {
	if err := c.check(0, false); err != nil {
		return err
	}
	return collective.Barrier(c.coll())
}

// Bcast copies buf from root into buf on every rank. Every rank passes a buffer of the same
// length.
func Bcast[T Elem](c *Comm, buf []T, root int) error {
	if err := c.checkRoot(root); err != nil {
		return err
	}
	return collective.BcastBinomial(c.coll(), bytesOf(buf), root)
}

// Allreduce leaves in recv, on every rank, the elementwise reduction by op of every rank's
// send. send and recv have the same length and may be the same slice (in place). Every rank
// gets the same bits, floating point included.
func Allreduce[T Number](c *Comm, send, recv []T, op Op) error {
	if err := c.check(0, false); err != nil {
		return err
	}
	if len(send) != len(recv) {
		return fmt.Errorf("%w: Allreduce of %d elements into %d", ErrBuffer, len(send), len(recv))
	}
	r, err := collective.NewReducer(op, kindOf[T](), sizeOf[T]())
	if err != nil {
		return err
	}
	return collective.AllreduceRecursiveDoubling(c.coll(), bytesOf(send), bytesOf(recv), r)
}

// AllreduceFunc is Allreduce with a user-defined associative operation: f(inout, in) sets
// inout[i] = inout[i] ⊕ in[i], where inout holds the contribution of lower ranks. f need not
// be commutative: operands are combined in rank order.
func AllreduceFunc[T Elem](c *Comm, send, recv []T, f func(inout, in []T)) error {
	if err := c.check(0, false); err != nil {
		return err
	}
	if len(send) != len(recv) {
		return fmt.Errorf("%w: AllreduceFunc of %d elements into %d", ErrBuffer, len(send), len(recv))
	}
	r := collective.Reducer{Size: sizeOf[T](), Func: func(inout, in []byte) {
		f(view.As[T](inout), view.As[T](in))
	}}
	return collective.AllreduceRecursiveDoubling(c.coll(), bytesOf(send), bytesOf(recv), r)
}
