package comm

import (
	"cmp"
	"slices"

	"github.com/gorun-hpc/gorun/topology"
)

// Grid placement for Cart's reorder. Every rank computes the same placement from what every
// rank knows without communicating: the node of every rank and, on its own node, every
// rank's CPUs, so the ranks agree on it by construction.

// locality is where a rank runs: its node and, within the node, its L3 cache (-1 unknown).
type locality struct{ node, l3 int }

// locality returns where each of ranks 0..n-1 of c runs. The L3 of a rank is known only on
// this rank's node (the machine is this node's); elsewhere, and where the rank is not bound
// inside one L3, it is -1.
func (c *Comm) locality(n int) []locality {
	me := c.w.NodeOf(c.worldRank(c.rank))
	m := c.w.Machine()
	out := make([]locality, n)
	for r := range n {
		w := c.worldRank(r)
		out[r] = locality{node: c.w.NodeOf(w), l3: -1}
		if m != nil && out[r].node == me {
			out[r].l3 = m.Within(topology.LevelL3, c.w.CPUs(w))
		}
	}
	return out
}

// placeGrid returns the cell (row-major index) each rank takes in a grid of dims, given where
// the ranks run (one locality per cell): the ranks, ordered by node, L3 and rank, fill the
// cells in the order of a recursive bisection of the grid, so that each node (and each L3)
// gets a compact block of cells. The result is kept only if fewer neighbour pairs cross
// nodes than in row-major order (rank r at cell r); on one node, if fewer cross L3 caches.
//
// Ranks on different nodes see different L3 facts (each knows only its own node's), so they
// may order a node's ranks differently; they agree on which block of cells each node gets,
// and each rank's own cell comes from its node's view, which its node's ranks share. The
// choice of placement uses the L3 counts only when every rank is on one node, where every
// rank sees the same facts. (Were the ranks to disagree anyway, Split would still make one
// communicator, ordered by the keys: only the placement would be worse.)
func placeGrid(dims []int, periodic []bool, loc []locality) []int {
	n := len(loc)
	rowMajor := make([]int, n)
	for r := range rowMajor {
		rowMajor[r] = r
	}
	order := make([]int, n) // ranks by node, then L3, then rank
	copy(order, rowMajor)
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(loc[a].node, loc[b].node), cmp.Compare(loc[a].l3, loc[b].l3))
	})
	cells := bisectionOrder(dims)
	placed := make([]int, n)
	for i, r := range order {
		placed[r] = cells[i]
	}
	p, q := gridCost(dims, periodic, loc, placed), gridCost(dims, periodic, loc, rowMajor)
	oneNode := loc[order[0]].node == loc[order[n-1]].node
	if p.node < q.node || oneNode && p.l3 < q.l3 {
		return placed
	}
	return rowMajor
}

// cost is the number of grid neighbour pairs (each pair of adjacent cells once per
// dimension and direction it is adjacent in) whose ranks are on different nodes, and on one
// node under different known L3 caches.
type cost struct{ node, l3 int }

// gridCost counts the neighbour pairs of the placement cellOf (rank → cell) that cross nodes
// and L3 caches.
func gridCost(dims []int, periodic []bool, loc []locality, cellOf []int) cost {
	at := make([]int, len(cellOf)) // cell → rank
	for r, cell := range cellOf {
		at[cell] = r
	}
	var c cost
	stride := len(cellOf)
	for d, k := range dims {
		stride /= k
		for cell := range at {
			x := cell / stride % k
			next := cell + stride
			if x == k-1 {
				if !periodic[d] || k == 1 {
					continue
				}
				next = cell - x*stride
			}
			a, b := loc[at[cell]], loc[at[next]]
			switch {
			case a.node != b.node:
				c.node++
			case a.l3 != b.l3 && a.l3 >= 0 && b.l3 >= 0:
				c.l3++
			}
		}
	}
	return c
}

// bisectionOrder lists the cells of a grid of dims (row-major indices) so that every run of
// consecutive cells is compact: the grid is cut in two across its longest dimension, the
// lower half listed before the upper, recursively.
func bisectionOrder(dims []int) []int {
	cells := 1
	for _, k := range dims {
		cells *= k
	}
	out := make([]int, 0, cells)
	lo, hi := make([]int, len(dims)), slices.Clone(dims)
	var cut func()
	cut = func() {
		longest, size := -1, 1
		for d := range dims {
			if hi[d]-lo[d] > size {
				longest, size = d, hi[d]-lo[d]
			}
		}
		if longest < 0 { // one cell
			cell := 0
			for d, k := range dims {
				cell = cell*k + lo[d]
			}
			out = append(out, cell)
			return
		}
		l, h := lo[longest], hi[longest]
		mid := l + size/2
		hi[longest] = mid
		cut()
		hi[longest], lo[longest] = h, mid
		cut()
		lo[longest] = l
	}
	cut()
	return out
}
