package comm

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/internal/view"
	"github.com/gorun-hpc/gorun/topology"
)

// Undefined is the color that keeps a rank out of every new communicator in Split (MPI's
// MPI_UNDEFINED): Split returns a nil *Comm and no error for it. Any negative color does.
const Undefined = -1

// Dup returns a new communicator with the same ranks and a context of its own: traffic on it
// never matches receives on c, and the reverse. Collective: every rank of c calls it.
func (c *Comm) Dup() (*Comm, error) {
	return c.Split(0, c.rank)
}

// Split partitions c: ranks that pass the same color form a new communicator, ordered by key
// (ties by rank in c). A rank that passes a negative color (Undefined) takes part but gets nil.
// Collective: every rank of c calls it, once, in the same order as its other collectives.
func (c *Comm) Split(color, key int) (*Comm, error) {
	return c.split(color, key, 0)
}

// split is Split for constructors whose arguments every rank must pass alike (Cart's dims,
// Sub's keep): agree is a hash of them, and if any two ranks' differ every rank gets
// ErrMismatch (and no communicator), instead of some ranks holding one that others lack.
func (c *Comm) split(color, key int, agree int64) (*Comm, error) {
	if err := c.check(0, false); err != nil {
		return nil, err
	}
	// Every rank contributes (color, key, next free context, agree); all learn all of them.
	c.state.mu.Lock()
	next := c.state.nextCtx
	c.state.mu.Unlock()
	const words = 4
	mine := []int64{int64(color), int64(key), int64(next), agree}
	all := make([]int64, words*c.size)
	if err := collective.AllgatherRing(c.coll(), view.Bytes(mine), view.Bytes(all)); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	// The new context pair is the highest next-free value of any member of c: above every
	// context any member has ever used, so no two communicators a rank belongs to share one.
	// Disjoint groups of one Split may share it: no rank is in both.
	ctx := uint32(0)
	for r := range c.size {
		ctx = max(ctx, uint32(all[words*r+2]))
		if all[words*r+3] != agree {
			return nil, fmt.Errorf("%w: rank %d passed other arguments than rank %d", ErrMismatch, r, c.rank)
		}
	}
	c.state.mu.Lock()
	c.state.nextCtx = max(c.state.nextCtx, ctx+1)
	c.state.mu.Unlock()
	if color < 0 {
		return nil, nil
	}
	var members []member
	for r := range c.size {
		if int(all[words*r]) == color {
			members = append(members, member{int(all[words*r+1]), r})
		}
	}
	return c.derive(ctx, members)
}

// member is a rank of a parent communicator and its key in the new one.
type member struct{ key, rank int }

// derive returns the communicator of context pair ctx over members (ranks of c), ordered by
// key, ties by rank in c, node-aware where it can be (setupNode). This rank must be one of
// them, and every member calls it.
func (c *Comm) derive(ctx uint32, members []member) (*Comm, error) {
	slices.SortStableFunc(members, func(a, b member) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.rank, b.rank))
	})
	n := &Comm{w: c.w, ctx: 2 * ctx, size: len(members), state: c.state,
		group: make([]int, len(members)), index: make(map[int]int, len(members))}
	for i, m := range members {
		wr := c.worldRank(m.rank)
		n.group[i], n.index[wr] = wr, i
		if m.rank == c.rank {
			n.rank = i
		}
	}
	if c.state.shared {
		if err := n.setupNode(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// SplitNode returns the communicator of the ranks of c that share this rank's node (and so
// its shared memory), ordered as in c: SplitType(SplitNode, rank). Collective over c.
func (c *Comm) SplitNode() (*Comm, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil communicator", ErrClosed)
	}
	return c.SplitType(SplitNode, c.rank)
}

// SplitKind is the piece of hardware SplitType groups ranks by (MPI_Comm_split_type).
type SplitKind int

const (
	// SplitNode: the ranks that share a node, and so its memory (MPI_COMM_TYPE_SHARED).
	SplitNode SplitKind = iota
	// SplitNUMA: the ranks of one NUMA node.
	SplitNUMA
	// SplitL3: the ranks under one L3 cache.
	SplitL3
	// SplitSocket: the ranks of one package (socket).
	SplitSocket
)

var splitLevels = [...]topology.Level{SplitNUMA: topology.LevelNUMA, SplitL3: topology.LevelL3, SplitSocket: topology.LevelPackage}

// SplitType returns the communicator of the ranks of c that share this rank's piece of
// hardware of the given kind, ordered by key (ties by rank in c). A rank belongs to a NUMA
// node, L3 or socket when every CPU it may run on is in that one (gorun binds ranks to a core
// when they fit, so they do). Where the machine does not report that kind (no L3, as in many
// virtual machines) or some rank of the node is not bound inside one, the node's ranks are
// grouped by node instead; gorun --explain says which kinds this machine reports.
// Collective over c.
func (c *Comm) SplitType(kind SplitKind, key int) (*Comm, error) {
	if err := c.check(0, false); err != nil {
		return nil, err
	}
	if kind < SplitNode || kind > SplitSocket {
		return nil, fmt.Errorf("%w: SplitType kind %d", ErrTopology, kind)
	}
	node := c.w.NodeOf(c.worldRank(c.rank))
	return c.Split(node<<16|c.domain(kind, node), key)
}

// domain is the number (1, 2, …) of this rank's piece of hardware of kind on its node, or 0
// for the whole node: for SplitNode, and when some rank of c on the node is not inside one.
// Every rank of c on the node computes it from the same facts (the node's machine and every
// local rank's CPUs), so they agree.
func (c *Comm) domain(kind SplitKind, node int) int {
	m := c.w.Machine()
	if kind == SplitNode || m == nil {
		return 0
	}
	mine := 0
	for r := range c.size {
		w := c.worldRank(r)
		if c.w.NodeOf(w) != node {
			continue
		}
		d := m.Within(splitLevels[kind], c.w.CPUs(w))
		if d < 0 {
			return 0
		}
		if r == c.rank {
			mine = d + 1
		}
	}
	return mine
}
