package collective

import (
	"fmt"

	"github.com/gorun-hpc/gorun/internal/sharedcopy"
)

// Node is the shared memory of the ranks of one node, for the node-aware algorithms: every
// local rank owns a slot that it writes and all read (an algorithm may hand each rank a
// disjoint part of one slot to write between two phases), and phases complete when every local
// rank has arrived (see transport/shm/arena.go, which implements it). A round (Round) gives
// every rank the other half of its slot, so a rank that is still reading the data of the
// previous round never sees it overwritten: each algorithm begins every batch of data with
// Round, writes its slot, then Phase, then reads.
//
// Only the collectives of a communicator that holds every rank of its node use it, one at a
// time (as MPI orders collectives), in the same order on every local rank.
type Node interface {
	Rank() int     // this rank among the node's ranks
	Size() int     // the number of ranks on the node
	HalfSize() int // bytes a rank can put in its slot per round
	Round()        // begin a data round
	Slot(i int) []byte
	Phase() error // arrive, and wait until every local rank has
	// Barrier returns once every local rank has entered it. It touches no slot and no
	// round, and may be cheaper than a phase.
	Barrier() error
}

// nodeSmallReduce: up to this many bytes, every rank of an allreduce combines all the slots
// itself (one phase); above it, each rank combines its own part of everybody's data in place
// and then all read the parts (two phases, each rank reading the data once). A phase costs a
// cache-line transfer when every rank has a CPU, but tens of microseconds when ranks share
// CPUs, which is what this threshold trades against n-fold reads.
const nodeSmallReduce = 16 << 10

// nodeBcastMin: a broadcast within one node smaller than this goes point to point (the
// decision table's tree) instead of through the arena. The arena makes the root wait until
// every rank has arrived; a tree lets it send eagerly and go. Measured with the OSU method
// on two cores: 2 ranks, 16-256 B, 0.53-0.63 µs by tree against 1.2-2.0 through the arena;
// 8 ranks, up to 8 KiB, 34-43 µs against 45-50; from 16 KiB the arena wins (8 ranks: 50 µs
// against 146).
const nodeBcastMin = 16 << 10

// chunk returns the size of the next piece of a total that has done bytes done, at most limit
// and a multiple of elem.
func chunk(total, done, limit, elem int) int {
	return min(total-done, limit/elem*elem)
}

// nodeBcast copies buf from local rank root to every local rank: the root writes each piece
// once into its slot and every rank copies it out.
func nodeBcast(n Node, buf []byte, root int) error {
	for off := 0; off < len(buf); {
		c := chunk(len(buf), off, n.HalfSize(), 1)
		n.Round()
		if n.Rank() == root {
			sharedcopy.Copy(n.Slot(root), buf[off:off+c])
		}
		if err := n.Phase(); err != nil {
			return err
		}
		if n.Rank() != root {
			sharedcopy.Copy(buf[off:off+c], n.Slot(root)[:c])
		}
		off += c
	}
	return nil
}

// nodeAllreduce leaves in recv, on every local rank, the reduction of every local rank's send
// (send and recv may be the same slice).
func nodeAllreduce(n Node, send, recv []byte, r Reducer) error {
	if len(send) != len(recv) {
		return fmt.Errorf("%w: allreduce of %d bytes into %d", errBuffer, len(send), len(recv))
	}
	return nodeReduceTo(n, send, recv, r, -1)
}

// reduceSlots sets out to the rank-order reduction of bytes [lo, hi) of every slot.
func reduceSlots(n Node, out []byte, lo, hi int, r Reducer) {
	sharedcopy.Copy(out, n.Slot(0)[lo:hi])
	for i := 1; i < n.Size(); i++ {
		r.apply(out, n.Slot(i)[lo:hi])
	}
}

// part is the byte range [lo, hi) of a c-byte piece that local rank i combines: the piece
// split as evenly as whole elements allow.
func part(i, parts, c, elem int) (int, int) {
	elems := c / elem
	lo := i * elems / parts * elem
	hi := (i + 1) * elems / parts * elem
	return lo, hi
}

// reduceScatterInPlace combines this rank's part of the c-byte piece in every slot, in rank
// order, in place in slot 0; after a phase, slot 0 holds the whole result, which it copies
// into out (every rank, or, with root >= 0, only the root). Between the two phases each rank
// writes its own part of slot 0 and reads only that part of the others' slots, so no byte is
// written by one rank while another reads it; working in place spares a scratch buffer, whose
// fresh pages cost more than the reduction (110 calls of 32 KiB took 70-100 µs each with
// one, 13 µs once the allocator had recycled its pages).
func reduceScatterInPlace(n Node, out []byte, c int, r Reducer, root int) error {
	me := n.Rank()
	if lo, hi := part(me, n.Size(), c, r.Size); hi > lo {
		acc := n.Slot(0)[lo:hi]
		for i := 1; i < n.Size(); i++ {
			r.apply(acc, n.Slot(i)[lo:hi])
		}
	}
	if err := n.Phase(); err != nil {
		return err
	}
	if root < 0 || me == root {
		sharedcopy.Copy(out[:c], n.Slot(0)[:c])
	}
	return nil
}

// nodeReduce leaves in recv at local rank root the reduction of every local rank's send.
func nodeReduce(n Node, send, recv []byte, r Reducer, root int) error {
	if n.Rank() == root && len(recv) != len(send) {
		return fmt.Errorf("%w: reduce of %d bytes into %d", errBuffer, len(send), len(recv))
	}
	return nodeReduceTo(n, send, recv, r, root)
}

// nodeReduceTo is nodeReduce, and with root < 0 nodeAllreduce. Small messages: every rank that
// gets the result combines all slots, in rank order. Large ones: each rank combines its own
// part of everybody's data in place in slot 0 (reduceScatterInPlace), then the ranks that get
// the result copy it out. Either way each element of the result is combined in rank order,
// the same way on every rank, so all get the same bits.
func nodeReduceTo(n Node, send, recv []byte, r Reducer, root int) error {
	small := len(send) <= nodeSmallReduce
	gets := root < 0 || n.Rank() == root
	for off := 0; off < len(send); {
		c := chunk(len(send), off, n.HalfSize(), r.Size)
		if err := publishOwn(n, send[off:off+c]); err != nil {
			return err
		}
		var out []byte
		if gets {
			out = recv[off : off+c]
		}
		if !small {
			if err := reduceScatterInPlace(n, out, c, r, root); err != nil {
				return err
			}
		} else if gets {
			reduceSlots(n, out, 0, c, r)
		}
		off += c
	}
	return nil
}

// nodeReduceScatter leaves in recv the rank-order reduction of bytes [lo, lo+len(recv)) of
// every local rank's send (which all hold the same number of bytes): in each round every rank
// writes the next piece of its send into its slot and, after the phase, combines the part of
// the piece that falls in its own block. One phase per round and each byte of the result
// combined once, by the rank that gets it; the blocks are disjoint, so no rank waits on
// another's combining.
func nodeReduceScatter(n Node, send, recv []byte, lo int, r Reducer) error {
	hi := lo + len(recv)
	for off := 0; off < len(send); {
		c := chunk(len(send), off, n.HalfSize(), r.Size)
		if err := publishOwn(n, send[off:off+c]); err != nil {
			return err
		}
		if a, b := max(lo, off), min(hi, off+c); a < b {
			reduceSlots(n, recv[a-lo:b-lo], a-off, b-off, r)
		}
		off += c
	}
	return nil
}

// publishOwn starts a round in which every local rank writes piece into its own slot, and
// returns once all have: every slot then holds its rank's piece until the next round.
func publishOwn(n Node, piece []byte) error {
	n.Round()
	sharedcopy.Copy(n.Slot(n.Rank()), piece)
	return n.Phase()
}

// nodeAllgather leaves in recv, on every local rank, every local rank's send in rank order.
func nodeAllgather(n Node, send, recv []byte) error {
	return nodeGather(n, send, recv, -1)
}

// nodeGather leaves in recv at local rank root every local rank's send in rank order (with
// root < 0 at every local rank: nodeAllgather). Each rank writes its block (piece by piece),
// and every rank that gets the result copies all blocks out.
func nodeGather(n Node, send, recv []byte, root int) error {
	b := len(send)
	if (root < 0 || n.Rank() == root) && len(recv) != b*n.Size() {
		return fmt.Errorf("%w: gather of %d-byte blocks from %d ranks into %d bytes", errBuffer, b, n.Size(), len(recv))
	}
	for off := 0; off < b; {
		c := chunk(b, off, n.HalfSize(), 1)
		if err := publishOwn(n, send[off:off+c]); err != nil {
			return err
		}
		if root < 0 || n.Rank() == root {
			for i := range n.Size() {
				sharedcopy.Copy(recv[i*b+off:i*b+off+c], n.Slot(i)[:c])
			}
		}
		off += c
	}
	return nil
}

// nodeScatter gives every local rank its block of send at local rank root.
func nodeScatter(n Node, send, recv []byte, root int) error {
	b, size := len(recv), n.Size()
	if n.Rank() == root && len(send) != b*size {
		return fmt.Errorf("%w: scatter of %d bytes to %d ranks of %d bytes", errBuffer, len(send), size, b)
	}
	per := n.HalfSize() / size // each round carries a piece of every block
	if per == 0 && b > 0 {
		return fmt.Errorf("%w: %d ranks do not fit a %d-byte slot", errBuffer, size, n.HalfSize())
	}
	for off := 0; off < b; {
		c := chunk(b, off, per, 1)
		n.Round()
		if n.Rank() == root {
			slot := n.Slot(root)
			for i := range size {
				sharedcopy.Copy(slot[i*c:(i+1)*c], send[i*b+off:i*b+off+c])
			}
		}
		if err := n.Phase(); err != nil {
			return err
		}
		me := n.Rank()
		sharedcopy.Copy(recv[off:off+c], n.Slot(root)[me*c:(me+1)*c])
		off += c
	}
	return nil
}

// nodeAlltoall: block i of recv comes from local rank i's block for this rank.
func nodeAlltoall(n Node, send, recv []byte) error {
	size := n.Size()
	if len(send) != len(recv) || len(send)%size != 0 {
		return fmt.Errorf("%w: alltoall of %d bytes into %d among %d ranks", errBuffer, len(send), len(recv), size)
	}
	b := len(send) / size
	per := n.HalfSize() / size
	if per == 0 && b > 0 {
		return fmt.Errorf("%w: %d ranks do not fit a %d-byte slot", errBuffer, size, n.HalfSize())
	}
	me := n.Rank()
	for off := 0; off < b; {
		c := chunk(b, off, per, 1)
		n.Round()
		slot := n.Slot(me)
		for i := range size {
			sharedcopy.Copy(slot[i*c:(i+1)*c], send[i*b+off:i*b+off+c])
		}
		if err := n.Phase(); err != nil {
			return err
		}
		for i := range size {
			sharedcopy.Copy(recv[i*b+off:i*b+off+c], n.Slot(i)[me*c:(me+1)*c])
		}
		off += c
	}
	return nil
}
