package comm

import (
	"fmt"
	"slices"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/internal/view"
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
	if err := c.check(0, false); err != nil {
		return nil, err
	}
	// Every rank contributes (color, key, next free context); all learn all of them.
	c.state.mu.Lock()
	next := c.state.nextCtx
	c.state.mu.Unlock()
	mine := []int64{int64(color), int64(key), int64(next)}
	all := make([]int64, 3*c.size)
	if err := collective.AllgatherRing(c.coll(), view.Bytes(mine), view.Bytes(all)); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	// The new context pair is the highest next-free value of any member of c: above every
	// context any member has ever used, so no two communicators a rank belongs to share one.
	// Disjoint groups of one Split may share it: no rank is in both.
	ctx := uint32(0)
	for r := range c.size {
		ctx = max(ctx, uint32(all[3*r+2]))
	}
	c.state.mu.Lock()
	c.state.nextCtx = max(c.state.nextCtx, ctx+1)
	c.state.mu.Unlock()
	if color < 0 {
		return nil, nil
	}
	type member struct{ key, rank int }
	var members []member
	for r := range c.size {
		if int(all[3*r]) == color {
			members = append(members, member{int(all[3*r+1]), r})
		}
	}
	slices.SortStableFunc(members, func(a, b member) int {
		if a.key != b.key {
			return a.key - b.key
		}
		return a.rank - b.rank
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
	return n, nil
}

// SplitNode returns the communicator of the ranks of c that share this rank's node (and so
// its shared memory), ordered as in c. Collective over c.
func (c *Comm) SplitNode() (*Comm, error) {
	if err := c.check(0, false); err != nil {
		return nil, err
	}
	return c.Split(c.w.NodeOf(c.worldRank(c.rank)), c.rank)
}
