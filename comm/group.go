package comm

import (
	"fmt"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/internal/view"
)

// Group is an ordered set of ranks of one communicator (MPI_Group), to name the members of a
// communicator made by CreateGroup. It is a local value: making and combining groups sends
// nothing. The zero Group is empty.
type Group struct {
	parent  *Comm
	members []int // group rank → rank of parent
}

// Group returns the group of every rank of c, in c's order.
func (c *Comm) Group() Group {
	if c == nil {
		return Group{}
	}
	g := Group{parent: c, members: make([]int, c.size)}
	for r := range g.members {
		g.members[r] = r
	}
	return g
}

// Size is the number of ranks in the group.
func (g Group) Size() int { return len(g.members) }

// Rank is this process's rank in the group, or Undefined if it is not a member.
func (g Group) Rank() int {
	if g.parent == nil {
		return Undefined
	}
	for i, r := range g.members {
		if r == g.parent.rank {
			return i
		}
	}
	return Undefined
}

// Ranks returns the members as ranks of the communicator the group was made from, in group
// order.
func (g Group) Ranks() []int { return append([]int(nil), g.members...) }

// Incl returns the group of g's ranks ranks[0], ranks[1], … in that order (MPI_Group_incl). A
// rank outside g, or one given twice, is ErrRank.
func (g Group) Incl(ranks []int) (Group, error) {
	if err := g.checkRanks("Incl", ranks); err != nil {
		return Group{}, err
	}
	out := Group{parent: g.parent, members: make([]int, len(ranks))}
	for i, r := range ranks {
		out.members[i] = g.members[r]
	}
	return out, nil
}

// Excl returns g without its ranks ranks, the others in g's order (MPI_Group_excl). A rank
// outside g, or one given twice, is ErrRank.
func (g Group) Excl(ranks []int) (Group, error) {
	if err := g.checkRanks("Excl", ranks); err != nil {
		return Group{}, err
	}
	drop := make([]bool, len(g.members))
	for _, r := range ranks {
		drop[r] = true
	}
	out := Group{parent: g.parent}
	for i, m := range g.members {
		if !drop[i] {
			out.members = append(out.members, m)
		}
	}
	return out, nil
}

// checkRanks reports ranks outside g and repeated ones.
func (g Group) checkRanks(what string, ranks []int) error {
	seen := make([]bool, len(g.members))
	for _, r := range ranks {
		if r < 0 || r >= len(g.members) {
			return fmt.Errorf("%w: Group.%s: %d not in [0, %d)", ErrRank, what, r, len(g.members))
		}
		if seen[r] {
			return fmt.Errorf("%w: Group.%s: %d given twice", ErrRank, what, r)
		}
		seen[r] = true
	}
	return nil
}

// Translate returns the rank in to of each of g's ranks ranks (MPI_Group_translate_ranks):
// Undefined for a process that is not in to, or a rank that is not in g; ProcNull stays
// ProcNull. The groups may come from different communicators of the job.
func (g Group) Translate(ranks []int, to Group) []int {
	at := make(map[int]int, len(to.members)) // world rank → rank in to
	for i, m := range to.members {
		at[to.parent.worldRank(m)] = i
	}
	out := make([]int, len(ranks))
	for i, r := range ranks {
		out[i] = Undefined
		switch {
		case r == ProcNull:
			out[i] = ProcNull
		case r >= 0 && r < len(g.members):
			if t, ok := at[g.parent.worldRank(g.members[r])]; ok {
				out[i] = t
			}
		}
	}
	return out
}

// groupTagBase sets CreateGroup's messages apart from the collective algorithms' in the
// parent's collective context: their tags are groupTagBase + tag mod groupTagBase, above
// every algorithm's (the algorithms' tags are small; tagNeighbor+k is the largest).
const groupTagBase = 1 << 30

// CreateGroup returns the communicator of g's members, in g's order (MPI_Comm_create_group).
// It is collective over the members only: the other ranks of c do not call it and may go on
// with anything but a collective over all of c (which would wait for the members) meanwhile.
// A rank that is not in g gets nil, nil without communicating. g must come from c (or from a
// communicator whose ranks are all in c).
//
// Calls that may run at the same time over groups that share ranks need different tags;
// tags are taken modulo 2^30. Like Split and the other constructors, CreateGroup must not
// run concurrently with another constructor at one rank: each takes the next free context
// of the ranks it spans.
func (c *Comm) CreateGroup(g Group, tag int) (*Comm, error) {
	if err := c.check(0, false); err != nil {
		return nil, err
	}
	if err := checkTag(tag, false); err != nil {
		return nil, err
	}
	me := g.Rank()
	if me == Undefined {
		return nil, nil
	}
	members := make([]member, len(g.members))
	sub := &Comm{w: c.w, ctx: c.ctx, rank: me, size: len(g.members), state: c.state,
		group: make([]int, len(g.members)), index: make(map[int]int, len(g.members))}
	for i, m := range g.members {
		w := g.parent.worldRank(m)
		r := c.commRank(w)
		if r < 0 {
			return nil, fmt.Errorf("%w: CreateGroup: world rank %d of the group is not in the communicator", ErrRank, w)
		}
		members[i] = member{key: i, rank: r}
		sub.group[i], sub.index[w] = w, i
	}
	// The members agree on the highest next free context among them, over c's collective
	// context with this call's tag (sub has c's contexts and the members' ranks).
	c.state.mu.Lock()
	next := c.state.nextCtx
	c.state.mu.Unlock()
	mine := []int64{int64(next)}
	all := make([]int64, len(members))
	v := &taggedView{collView: (*collView)(sub), tag: groupTagBase + tag%groupTagBase}
	if err := collective.AllgatherRing(v, view.Bytes(mine), view.Bytes(all)); err != nil {
		return nil, fmt.Errorf("CreateGroup: %w", err)
	}
	ctx := uint32(0)
	for _, k := range all {
		ctx = max(ctx, uint32(k))
	}
	c.state.mu.Lock()
	c.state.nextCtx = max(c.state.nextCtx, ctx+1)
	c.state.mu.Unlock()
	return c.derive(ctx, members)
}

// taggedView is a collView whose every message carries one tag, for an algorithm of one
// phase (AllgatherRing) run outside the order of the communicator's collectives.
type taggedView struct {
	*collView
	tag int
}

func (v *taggedView) Send(buf []byte, dst, _ int) error { return v.collView.Send(buf, dst, v.tag) }

func (v *taggedView) Recv(buf []byte, src, _ int) (int, error) {
	return v.collView.Recv(buf, src, v.tag)
}

func (v *taggedView) Sendrecv(send []byte, dst, _ int, recv []byte, src, _ int) (int, error) {
	return v.collView.Sendrecv(send, dst, v.tag, recv, src, v.tag)
}

func (v *taggedView) Isend(buf []byte, dst, _ int) (collective.Request, error) {
	return v.collView.Isend(buf, dst, v.tag)
}

func (v *taggedView) Irecv(buf []byte, src, _ int) (collective.Request, error) {
	return v.collView.Irecv(buf, src, v.tag)
}
