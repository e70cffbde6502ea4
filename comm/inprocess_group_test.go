package comm_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gorun-hpc/gorun/comm"
)

func TestInProcessGroups(t *testing.T) {
	forEachJob(t, func(c *comm.Comm) error {
		me, n := c.Rank(), c.Size()
		all := topoIota(n)
		w := c.Group()
		if w.Size() != n || w.Rank() != me || !slices.Equal(w.Ranks(), all) {
			return rankErrorf("world group: size %d rank %d ranks %v", w.Size(), w.Rank(), w.Ranks())
		}
		if r := w.Ranks(); len(r) > 0 {
			r[0] = 99
			if w.Ranks()[0] != 0 {
				return rankErrorf("Ranks returned the group's own slice")
			}
		}
		rev := slices.Clone(all)
		slices.Reverse(rev)
		rg, err := w.Incl(rev)
		if err != nil || rg.Size() != n || rg.Rank() != n-1-me || !slices.Equal(rg.Ranks(), rev) {
			return rankErrorf("reversed group: %v size %d rank %d ranks %v", err, rg.Size(), rg.Rank(), rg.Ranks())
		}
		var evens, odds []int
		for r := range n {
			if r%2 == 0 {
				evens = append(evens, r)
			} else {
				odds = append(odds, r)
			}
		}
		og, err := w.Excl(evens)
		if err != nil || !slices.Equal(og.Ranks(), odds) || og.Size() != len(odds) {
			return rankErrorf("world without the evens: %v %v", og.Ranks(), err)
		}
		wantRank := comm.Undefined
		if me%2 == 1 {
			wantRank = me / 2
		}
		if og.Rank() != wantRank {
			return rankErrorf("rank in the odds group %d, want %d", og.Rank(), wantRank)
		}
		// A group of a group: the odd ranks of the reversed group, as world ranks.
		var oddPos []int
		for i := 1; i < n; i += 2 {
			oddPos = append(oddPos, i)
		}
		sub, err := rg.Incl(oddPos)
		if err != nil {
			return err
		}
		for i, r := range sub.Ranks() {
			if r != rev[oddPos[i]] {
				return rankErrorf("Incl of the reversed group: %v", sub.Ranks())
			}
		}
		empty, err := w.Incl(nil)
		if err != nil || empty.Size() != 0 || empty.Rank() != comm.Undefined {
			return rankErrorf("empty Incl: size %d rank %d %v", empty.Size(), empty.Rank(), err)
		}
		if none, err := w.Excl(all); err != nil || none.Size() != 0 || none.Rank() != comm.Undefined {
			return rankErrorf("Excl of everyone: size %d rank %d %v", none.Size(), none.Rank(), err)
		}
		if same, err := w.Excl(nil); err != nil || !slices.Equal(same.Ranks(), all) {
			return rankErrorf("Excl of no one: %v %v", same.Ranks(), err)
		}
		for _, bad := range [][]int{{n}, {-1}, {0, 0}, {comm.ProcNull}, {n - 1, 0, n - 1}} {
			if _, err := w.Incl(bad); !errors.Is(err, comm.ErrRank) {
				return rankErrorf("Incl(%v): %v, want ErrRank", bad, err)
			}
			if _, err := w.Excl(bad); !errors.Is(err, comm.ErrRank) {
				return rankErrorf("Excl(%v): %v, want ErrRank", bad, err)
			}
		}
		if _, err := og.Incl([]int{len(odds)}); !errors.Is(err, comm.ErrRank) {
			return rankErrorf("Incl past a subgroup's size: %v", err)
		}

		// Translation: world to reversed, with ProcNull and ranks outside.
		tr := w.Translate(append(slices.Clone(all), comm.ProcNull, n, -1), rg)
		for r := range n {
			if tr[r] != n-1-r {
				return rankErrorf("Translate world → reversed: %v", tr)
			}
		}
		if tr[n] != comm.ProcNull || tr[n+1] != comm.Undefined || tr[n+2] != comm.Undefined {
			return rankErrorf("Translate of ProcNull, %d, -1: %v", n, tr[n:])
		}
		tr = w.Translate(all, og)
		for r := range n {
			want := comm.Undefined
			if r%2 == 1 {
				want = r / 2
			}
			if tr[r] != want {
				return rankErrorf("Translate world → odds: %v", tr)
			}
		}
		if tr := w.Translate(all, comm.Group{}); slices.ContainsFunc(tr, func(r int) bool { return r != comm.Undefined }) {
			return rankErrorf("Translate into the empty group: %v", tr)
		}
		var zero comm.Group
		if zero.Size() != 0 || zero.Rank() != comm.Undefined || len(zero.Translate([]int{0}, w)) != 1 || zero.Translate([]int{0}, w)[0] != comm.Undefined {
			return rankErrorf("the zero group: size %d rank %d", zero.Size(), zero.Rank())
		}

		// Between a split's group and the world's: colors by rank mod 3, keys reversed.
		sp, err := c.Split(me%3, -me)
		if err != nil {
			return err
		}
		defer sp.Close()
		var members []int // the split's ranks as world ranks
		for r := n - 1; r >= 0; r-- {
			if r%3 == me%3 {
				members = append(members, r)
			}
		}
		sg := sp.Group()
		if sg.Size() != len(members) || sg.Rank() != sp.Rank() || sg.Rank() != slices.Index(members, me) {
			return rankErrorf("split group size %d rank %d, members %v", sg.Size(), sg.Rank(), members)
		}
		if got := sg.Translate(topoIota(len(members)), w); !slices.Equal(got, members) {
			return rankErrorf("split → world: %v, want %v", got, members)
		}
		back := w.Translate(all, sg)
		for r := range n {
			want := slices.Index(members, r)
			if want < 0 {
				want = comm.Undefined
			}
			if back[r] != want {
				return rankErrorf("world → split: %v (members %v)", back, members)
			}
		}
		// A subgroup of the split (its first member dropped) to the reversed world group.
		if len(members) > 1 {
			sub, err := sg.Excl([]int{0})
			if err != nil {
				return err
			}
			got := sub.Translate(topoIota(sub.Size()), rg)
			for i, r := range got {
				if r != n-1-members[i+1] {
					return rankErrorf("split subgroup → reversed world: %v (members %v)", got, members)
				}
			}
		}
		return nil
	})
}

func TestInProcessCreateGroup(t *testing.T) {
	forEachJob(t, inSequence(
		namedStep{"subset while the others talk and build their own", createSubset},
		namedStep{"two overlapping groups, two tags", createOverlapping},
		namedStep{"of a split, and of a dup from a world group", createNested},
		namedStep{"errors", createErrors},
	))
}

// createSubset: every third rank and the last, in reverse order, make a communicator while
// the other ranks exchange messages in a ring on c (with the same tag) and then make theirs
// with the same tag (the groups are disjoint); both communicators' collectives are right.
func createSubset(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	var members, others []int
	for r := n - 1; r >= 0; r-- {
		if r%3 == 0 || r == n-1 {
			members = append(members, r)
		}
	}
	for r := range n {
		if !slices.Contains(members, r) {
			others = append(others, r)
		}
	}
	const tag = 5
	g, err := c.Group().Incl(members)
	if err != nil {
		return err
	}
	og, err := c.Group().Incl(others)
	if err != nil {
		return err
	}
	mine := members
	if i := slices.Index(others, me); i >= 0 {
		if sub, err := c.CreateGroup(g, tag); sub != nil || err != nil {
			return rankErrorf("CreateGroup at a non-member = %v, %v; want nil, nil", sub, err)
		}
		k := len(others)
		for round := range 20 {
			got := []int64{-1}
			right, left := others[(i+1)%k], others[(i-1+k)%k]
			if _, err := comm.Sendrecv(c, []int64{int64(me*100 + round)}, right, tag, got, left, tag); err != nil {
				return err
			}
			if got[0] != int64(left*100+round) {
				return rankErrorf("ring among non-members round %d: %d from %d", round, got[0], left)
			}
		}
		mine, g = others, og
	} else if sub, err := c.CreateGroup(og, tag); sub != nil || err != nil {
		return rankErrorf("CreateGroup of the others at a member = %v, %v; want nil, nil", sub, err)
	}
	sub, err := c.CreateGroup(g, tag)
	if err != nil {
		return err
	}
	if sub == nil || sub.Size() != len(mine) || sub.Rank() != slices.Index(mine, me) {
		return rankErrorf("CreateGroup of %v: %v", mine, sub)
	}
	defer sub.Close()
	if err := sumOfWorldRanks(sub, me, mine); err != nil {
		return err
	}
	if got := sub.Group().Translate(topoIota(sub.Size()), c.Group()); !slices.Equal(got, mine) {
		return rankErrorf("new communicator's ranks in the world: %v, want %v", got, mine)
	}
	root := []int64{-1}
	if sub.Rank() == sub.Size()-1 {
		root[0] = int64(me)
	}
	if err := comm.Bcast(sub, root, sub.Size()-1); err != nil {
		return err
	}
	if root[0] != int64(mine[len(mine)-1]) {
		return rankErrorf("bcast from the last of %v: %d", mine, root[0])
	}
	return c.Barrier()
}

// sumOfWorldRanks checks an allreduce over sub of the world ranks of its members.
func sumOfWorldRanks(sub *comm.Comm, me int, members []int) error {
	want := int64(0)
	for _, r := range members {
		want += int64(r)
	}
	got := []int64{int64(me)}
	if err := comm.Allreduce(sub, got, got, comm.Sum); err != nil {
		return err
	}
	if got[0] != want {
		return rankErrorf("allreduce of world ranks over %v: %d, want %d", members, got[0], want)
	}
	return nil
}

// createOverlapping: A = the first half and one more, B = the second half in reverse; the
// ranks in both make A then B, the others only theirs, at once: B's messages reach the
// shared ranks while they are still making A, and must wait for B (another tag).
func createOverlapping(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	var a, b []int
	for r := range n {
		if r <= n/2 {
			a = append(a, r)
		}
	}
	for r := n - 1; r >= n/2; r-- {
		b = append(b, r)
	}
	ga, err := c.Group().Incl(a)
	if err != nil {
		return err
	}
	gb, err := c.Group().Incl(b)
	if err != nil {
		return err
	}
	var ca, cb *comm.Comm
	if slices.Contains(a, me) {
		if ca, err = c.CreateGroup(ga, 1); err != nil {
			return err
		}
		defer ca.Close()
	}
	if slices.Contains(b, me) {
		if cb, err = c.CreateGroup(gb, 2); err != nil {
			return err
		}
		defer cb.Close()
	}
	for _, x := range []struct {
		sub     *comm.Comm
		members []int
	}{{ca, a}, {cb, b}} {
		if x.sub == nil {
			continue
		}
		if x.sub.Rank() != slices.Index(x.members, me) {
			return rankErrorf("rank %d in the group of %v", x.sub.Rank(), x.members)
		}
		if err := sumOfWorldRanks(x.sub, me, x.members); err != nil {
			return err
		}
	}
	// The two have contexts of their own: a message on one never matches a receive on the other.
	if ca != nil && cb != nil {
		sa, err := comm.Isend(ca, []int64{1}, ca.Rank(), 3)
		if err != nil {
			return err
		}
		sb, err := comm.Isend(cb, []int64{2}, cb.Rank(), 3)
		if err != nil {
			return err
		}
		got := []int64{0}
		if _, err := comm.Recv(cb, got, comm.AnySource, comm.AnyTag); err != nil || got[0] != 2 {
			return rankErrorf("receive on B: %v %v", got, err)
		}
		if _, err := comm.Recv(ca, got, comm.AnySource, comm.AnyTag); err != nil || got[0] != 1 {
			return rankErrorf("receive on A: %v %v", got, err)
		}
		for _, q := range []*comm.Request{sa, sb} {
			if _, err := q.Wait(); err != nil {
				return err
			}
		}
	}
	return c.Barrier()
}

// createNested: CreateGroup on a split with a group of the split, and on a dup with a group
// of the world (whose ranks are all in the dup).
func createNested(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	sp, err := c.Split(me%2, me)
	if err != nil {
		return err
	}
	defer sp.Close()
	// The split's members but its first, reversed.
	var pos []int
	for i := sp.Size() - 1; i >= 1; i-- {
		pos = append(pos, i)
	}
	g, err := sp.Group().Incl(pos)
	if err != nil {
		return err
	}
	var members []int
	for _, i := range pos {
		members = append(members, 2*i+me%2)
	}
	sub, err := sp.CreateGroup(g, 0)
	if err != nil {
		return err
	}
	if sp.Rank() == 0 {
		if sub != nil {
			return rankErrorf("the split's first rank got a communicator")
		}
	} else {
		defer sub.Close()
		if err := sumOfWorldRanks(sub, me, members); err != nil {
			return err
		}
	}
	// On the world, with the split's group (its ranks are all in the world): each half makes
	// its own at once, with one tag (the groups are disjoint).
	half, err := c.CreateGroup(sp.Group(), 6)
	if err != nil {
		return err
	}
	defer half.Close()
	var parity []int
	for r := me % 2; r < n; r += 2 {
		parity = append(parity, r)
	}
	if err := sumOfWorldRanks(half, me, parity); err != nil {
		return err
	}
	if half.Rank() != sp.Rank() {
		return rankErrorf("rank %d in the world's communicator of the split's group, %d in the split", half.Rank(), sp.Rank())
	}
	d, err := c.Dup()
	if err != nil {
		return err
	}
	defer d.Close()
	var firstHalf []int
	for r := range (n + 1) / 2 {
		firstHalf = append(firstHalf, r)
	}
	wg, err := c.Group().Incl(firstHalf)
	if err != nil {
		return err
	}
	dsub, err := d.CreateGroup(wg, 1<<30+4) // tags are taken modulo 2^30
	if err != nil {
		return err
	}
	if me < (n+1)/2 {
		defer dsub.Close()
		if err := sumOfWorldRanks(dsub, me, firstHalf); err != nil {
			return err
		}
	} else if dsub != nil {
		return rankErrorf("a rank outside the group got a communicator")
	}
	return d.Barrier()
}

func createErrors(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	for _, tag := range []int{-1, comm.AnyTag} {
		if sub, err := c.CreateGroup(c.Group(), tag); !errors.Is(err, comm.ErrTag) || sub != nil {
			return rankErrorf("CreateGroup with tag %d = %v, %v; want ErrTag", tag, sub, err)
		}
	}
	// A group naming ranks outside the communicator: world ranks 0 and 1, on the halves of a
	// parity split; each is a member, the other is not in its half.
	if n >= 2 {
		sp, err := c.Split(me%2, me)
		if err != nil {
			return err
		}
		defer sp.Close()
		g, err := c.Group().Incl([]int{0, 1})
		if err != nil {
			return err
		}
		sub, err := sp.CreateGroup(g, 0)
		if me < 2 && !errors.Is(err, comm.ErrRank) || me >= 2 && err != nil || sub != nil {
			return rankErrorf("CreateGroup of world ranks 0, 1 on a half = %v, %v", sub, err)
		}
	}
	// An empty group: nobody is a member.
	if sub, err := c.CreateGroup(comm.Group{}, 0); sub != nil || err != nil {
		return rankErrorf("CreateGroup of the empty group = %v, %v", sub, err)
	}
	return c.Barrier()
}

// TestInProcessSplitType: an in-process world has no machine facts, so every kind groups
// the ranks by node (the job shape's), ordered by key; a kind that does not exist is
// ErrTopology on every rank.
func TestInProcessSplitType(t *testing.T) {
	forTopoJobs(t, func(c *comm.Comm, n int, nodes []int) error {
		me := c.Rank()
		var want []int // my node's ranks, last first
		for r := n - 1; r >= 0; r-- {
			if nodes[r] == nodes[me] {
				want = append(want, r)
			}
		}
		for _, kind := range []comm.SplitKind{comm.SplitNode, comm.SplitNUMA, comm.SplitL3, comm.SplitSocket} {
			sub, err := c.SplitType(kind, -me)
			if err != nil {
				return fmt.Errorf("SplitType(%d): %w", kind, err)
			}
			got, err := worldRanksOf(c, sub)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) || sub.Rank() != slices.Index(want, me) {
				return rankErrorf("SplitType(%d) holds %v (I am %d), want %v", kind, got, sub.Rank(), want)
			}
			if err := sub.Close(); err != nil {
				return err
			}
		}
		// On a derived communicator (the world reversed), ordered by its ranks.
		rev, err := c.Split(0, -me)
		if err != nil {
			return err
		}
		defer rev.Close()
		sub, err := rev.SplitType(comm.SplitL3, 0)
		if err != nil {
			return err
		}
		defer sub.Close()
		if got, err := worldRanksOf(c, sub); err != nil || !slices.Equal(got, want) {
			return rankErrorf("SplitType of the reversed world holds %v, want %v (%v)", got, want, err)
		}
		for _, kind := range []comm.SplitKind{-1, comm.SplitSocket + 1, 100} {
			if sub, err := c.SplitType(kind, 0); !errors.Is(err, comm.ErrTopology) || sub != nil {
				return rankErrorf("SplitType(%d) = %v, %v; want ErrTopology", kind, sub, err)
			}
		}
		return c.Barrier()
	})
}

// TestInProcessDerivedCollectives: Allreduce and Bcast (small and over the rendezvous limit)
// on a Dup, a Split, a SplitType, a CreateGroup and a Cart communicator, whose members are
// known without the library: all ranks, one parity, the shape's node, the first half
// (reversed), the grid's ranks.
func TestInProcessDerivedCollectives(t *testing.T) {
	forTopoJobs(t, func(c *comm.Comm, n int, nodes []int) error {
		me := c.Rank()
		type derived struct {
			name    string
			sub     *comm.Comm
			members []int // nil: any order of all ranks (the reordered grid)
		}
		var subs []derived
		d, err := c.Dup()
		if err != nil {
			return err
		}
		subs = append(subs, derived{"dup", d, topoIota(n)})
		sp, err := c.Split(me%2, me)
		if err != nil {
			return err
		}
		var parity, node, half []int
		for r := range n {
			if r%2 == me%2 {
				parity = append(parity, r)
			}
			if nodes[r] == nodes[me] {
				node = append(node, r)
			}
		}
		for r := (n+1)/2 - 1; r >= 0; r-- {
			half = append(half, r)
		}
		subs = append(subs, derived{"split", sp, parity})
		st, err := c.SplitType(comm.SplitL3, me)
		if err != nil {
			return err
		}
		subs = append(subs, derived{"splittype", st, node})
		hg, err := c.Group().Incl(half)
		if err != nil {
			return err
		}
		if me < (n+1)/2 {
			cg, err := c.CreateGroup(hg, 3)
			if err != nil {
				return err
			}
			subs = append(subs, derived{"creategroup", cg, half})
		}
		dims, _ := comm.DimsCreate(n, []int{0, 0})
		ct, err := c.Cart(dims, []bool{true, false}, true)
		if err != nil {
			return err
		}
		subs = append(subs, derived{"cart", ct.Comm, nil})
		for _, x := range subs {
			if err := derivedCollectives(c, x.sub, x.members); err != nil {
				return fmt.Errorf("%s: %w", x.name, err)
			}
		}
		for _, x := range subs {
			if err := x.sub.Close(); err != nil {
				return err
			}
		}
		return c.Barrier()
	})
}

func derivedCollectives(c, sub *comm.Comm, members []int) error {
	me := c.Rank()
	if members == nil {
		members = topoIota(c.Size())
		world, err := worldRanksOf(c, sub)
		if err != nil {
			return err
		}
		if slices.Sort(world); !slices.Equal(world, members) {
			return rankErrorf("members %v, want every rank", world)
		}
	} else if sub.Size() != len(members) || sub.Rank() != slices.Index(members, me) {
		return rankErrorf("rank %d of %d, want %d of %v", sub.Rank(), sub.Size(), slices.Index(members, me), members)
	}
	if err := sumOfWorldRanks(sub, me, members); err != nil {
		return err
	}
	mx := []int64{int64(me)}
	if err := comm.Allreduce(sub, mx, mx, comm.Max); err != nil {
		return err
	}
	if mx[0] != int64(slices.Max(members)) {
		return rankErrorf("max of world ranks %d over %v", mx[0], members)
	}
	for root := range sub.Size() {
		for _, size := range []int{8, 100 << 10} {
			buf := make([]byte, size)
			if sub.Rank() == root {
				pattern(buf, root+size%7)
			}
			if err := comm.Bcast(sub, buf, root); err != nil {
				return err
			}
			if err := samePattern(buf, root+size%7, fmt.Sprintf("bcast of %d bytes from %d", size, root)); err != nil {
				return err
			}
		}
	}
	return nil
}
