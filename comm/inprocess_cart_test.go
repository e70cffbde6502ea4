package comm_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/collref"
	"github.com/gorun-hpc/gorun/internal/memtransport"
)

// Process topologies in process: Cartesian grids (coordinates, shifts, sub-grids, ranks
// beyond the grid, bad arguments), distributed graphs, the neighbourhood collectives on both
// (a rank that is its own or a double neighbour, ProcNull blocks, empty to 1 MiB), groups and
// CreateGroup, SplitType, and the ordinary collectives on every kind of derived communicator.
// Expected values come from the row-major arithmetic below, not from the library's.

// topoShapes are the job shapes and one more, nodes dealt round robin, where row-major order
// puts grid neighbours on different nodes and Cart's reorder has something to improve.
var topoShapes = slices.Concat(jobShapes, []jobShape{{"pushed-cyclic-two-nodes", memtransport.Config{}, func(n int) []int {
	nodes := make([]int, n)
	for r := range nodes {
		nodes[r] = r % 2
	}
	return nodes
}}})

// shapeNodes is the node of each of the n ranks of a job of shape (each rank its own node
// where the shape says nothing).
func shapeNodes(shape jobShape, n int) []int {
	if shape.nodes != nil {
		return shape.nodes(n)
	}
	return topoIota(n)
}

func topoIota(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

func topoProd(dims []int) int {
	p := 1
	for _, k := range dims {
		p *= k
	}
	return p
}

// gridCross counts the neighbour pairs (every cell and its +1 neighbour along every
// dimension, wrapping where periodic) whose cells' nodes differ.
func gridCross(dims []int, periodic []bool, nodeOf func(cell int) int) int {
	cross := 0
	for cell := range topoProd(dims) {
		x := collref.GridCoords(dims, cell)
		for d := range dims {
			if _, nb := collref.GridShift(dims, periodic, x, d, 1); nb != comm.ProcNull && nodeOf(nb) != nodeOf(cell) {
				cross++
			}
		}
	}
	return cross
}

// topoGrids are the grids of every shape DimsCreate makes for n ranks in 1, 2 and 3
// dimensions, each periodic everywhere, nowhere, and in every other dimension.
func topoGrids(n int) (dims [][]int, periodic [][]bool) {
	for nd := 1; nd <= 3; nd++ {
		ds, err := comm.DimsCreate(n, make([]int, nd))
		if err != nil {
			panic(err)
		}
		all, none, mixed := make([]bool, nd), make([]bool, nd), make([]bool, nd)
		for d := range nd {
			all[d], mixed[d] = true, d%2 == 0
		}
		for _, p := range [][]bool{all, none, mixed} {
			dims, periodic = append(dims, ds), append(periodic, p)
		}
	}
	return dims, periodic
}

// worldRanksOf returns the rank in c of every rank of sub, by an allgather over sub.
func worldRanksOf(c, sub *comm.Comm) ([]int, error) {
	all := make([]int64, sub.Size())
	if err := comm.Allgather(sub, []int64{int64(c.Rank())}, all); err != nil {
		return nil, err
	}
	out := make([]int, len(all))
	for i, w := range all {
		out[i] = int(w)
	}
	return out, nil
}

// forTopoJobs runs f as a subtest on every topology job shape at every size, telling it the
// size and the node of each rank.
func forTopoJobs(t *testing.T, f func(c *comm.Comm, n int, nodes []int) error) {
	t.Helper()
	for _, shape := range topoShapes {
		for _, n := range inProcRanks {
			nodes := shapeNodes(shape, n)
			t.Run(fmt.Sprintf("%s/n%d", shape.name, n), func(t *testing.T) {
				runJob(t, n, shape, func(c *comm.Comm) error { return f(c, n, nodes) })
			})
		}
	}
}

func TestInProcessCart(t *testing.T) {
	forTopoJobs(t, func(c *comm.Comm, n int, nodes []int) error {
		dims, periodic := topoGrids(n)
		for i := range dims {
			for _, reorder := range []bool{false, true} {
				if err := cartGeometry(c, nodes, dims[i], periodic[i], reorder); err != nil {
					return fmt.Errorf("Cart(%v, %v, reorder %v): %w", dims[i], periodic[i], reorder, err)
				}
			}
		}
		// A grid of a derived communicator (the world reversed): its ranks, not the
		// world's, are the grid's candidates.
		rev, err := c.Split(0, -c.Rank())
		if err != nil {
			return err
		}
		defer rev.Close()
		revNodes := slices.Clone(nodes)
		slices.Reverse(revNodes)
		for _, i := range []int{1, 4, 8} {
			if err := cartGeometry(rev, revNodes, dims[i], periodic[i], true); err != nil {
				return fmt.Errorf("Cart(%v, %v) of the reversed world: %w", dims[i], periodic[i], err)
			}
		}
		return nil
	})
}

// cartGeometry makes a Cart of c (the world; nodes: each rank's node) and checks every rank's
// coordinates, RankOf with wrap-around and errors, Shift at displacements -2..2 and invalid
// dimensions, Neighbors, that the ranks are a permutation of c's (the identity without
// reorder; with it, never more cross-node neighbour pairs than row-major), and one collective
// and one neighbour exchange on it.
func cartGeometry(c *comm.Comm, nodes []int, dims []int, periodic []bool, reorder bool) error {
	in, inp := slices.Clone(dims), slices.Clone(periodic)
	ct, err := c.Cart(in, inp, reorder)
	if err != nil {
		return err
	}
	in[0], inp[0] = 99, !inp[0] // Cart must have kept its own copies
	cells := topoProd(dims)
	if c.Rank() >= cells {
		if ct != nil {
			return rankErrorf("rank %d beyond a grid of %d cells got a Cart", c.Rank(), cells)
		}
		return nil
	}
	if ct == nil {
		return rankErrorf("rank %d of a grid of %d cells got nil", c.Rank(), cells)
	}
	defer ct.Close()
	me := ct.Rank()
	if ct.Size() != cells || me < 0 || me >= cells || !reorder && me != c.Rank() {
		return rankErrorf("rank %d is %d of %d in the grid", c.Rank(), me, ct.Size())
	}
	gd, gp := ct.Dims(), ct.Periodic()
	if !slices.Equal(gd, dims) || !slices.Equal(gp, periodic) {
		return rankErrorf("Dims %v, Periodic %v; want %v, %v", gd, gp, dims, periodic)
	}
	gd[0], gp[0] = -1, !gp[0]
	if ct.Dims()[0] != dims[0] || ct.Periodic()[0] != periodic[0] {
		return rankErrorf("Dims or Periodic returned the grid's own slice")
	}
	for r := range cells {
		want := collref.GridCoords(dims, r)
		if got := ct.Coords(r); !slices.Equal(got, want) {
			return rankErrorf("Coords(%d) = %v, want %v", r, got, want)
		}
		if got, err := ct.RankOf(want); err != nil || got != r {
			return rankErrorf("RankOf(%v) = %d, %v; want %d", want, got, err, r)
		}
	}
	for _, r := range []int{-1, cells, cells + 3, comm.ProcNull} {
		if got := ct.Coords(r); got != nil {
			return rankErrorf("Coords(%d) = %v, want nil", r, got)
		}
	}
	x := collref.GridCoords(dims, me)
	for d, k := range dims {
		for _, off := range []int{-1, 1, k, -k, 3*k + 1, -2*k - 1} {
			y := slices.Clone(x)
			y[d] += off
			got, err := ct.RankOf(y)
			switch {
			case y[d] >= 0 && y[d] < k:
				if err != nil || got != collref.GridCell(dims, y) {
					return rankErrorf("RankOf(%v) = %d, %v; want %d", y, got, err, collref.GridCell(dims, y))
				}
			case periodic[d]:
				z := slices.Clone(y)
				z[d] = (y[d]%k + k) % k
				if err != nil || got != collref.GridCell(dims, z) {
					return rankErrorf("RankOf(%v) periodic = %d, %v; want %d (wrapped to %v)", y, got, err, collref.GridCell(dims, z), z)
				}
			default:
				if !errors.Is(err, comm.ErrRank) {
					return rankErrorf("RankOf(%v) past a non-periodic edge = %d, %v; want ErrRank", y, got, err)
				}
			}
		}
	}
	for _, bad := range [][]int{nil, append(slices.Clone(x), 0), x[:len(x)-1]} {
		if got, err := ct.RankOf(bad); !errors.Is(err, comm.ErrTopology) {
			return rankErrorf("RankOf(%v) in %d dimensions = %d, %v; want ErrTopology", bad, len(dims), got, err)
		}
	}
	for d := range dims {
		for disp := -2; disp <= 2; disp++ {
			src, dst := ct.Shift(d, disp)
			ws, wd := collref.GridShift(dims, periodic, x, d, disp)
			if src != ws || dst != wd {
				return rankErrorf("at %v Shift(%d, %d) = %d, %d; want %d, %d", x, d, disp, src, dst, ws, wd)
			}
		}
	}
	for _, d := range []int{-1, len(dims), len(dims) + 4} {
		if src, dst := ct.Shift(d, 1); src != comm.ProcNull || dst != comm.ProcNull {
			return rankErrorf("Shift(%d, 1) in %d dimensions = %d, %d; want ProcNull twice", d, len(dims), src, dst)
		}
	}
	srcs, dsts := ct.Neighbors()
	if len(srcs) != 2*len(dims) || !slices.Equal(srcs, dsts) {
		return rankErrorf("Neighbors = %v, %v", srcs, dsts)
	}
	for d := range dims {
		lo, hi := collref.GridShift(dims, periodic, x, d, 1)
		if srcs[2*d] != lo || srcs[2*d+1] != hi {
			return rankErrorf("at %v Neighbors %v: dimension %d should be %d, %d", x, srcs, d, lo, hi)
		}
	}
	srcs[0] = 12345
	if again, _ := ct.Neighbors(); again[0] == 12345 {
		return rankErrorf("Neighbors returned the grid's own slice")
	}

	// Who sits where: a permutation of c's first cells ranks, as the group says too.
	world, err := worldRanksOf(c, ct.Comm)
	if err != nil {
		return err
	}
	if tr := ct.Group().Translate(topoIota(cells), c.Group()); !slices.Equal(tr, world) {
		return rankErrorf("grid ranks translate to %v in the world, the allgather says %v", tr, world)
	}
	seen := make([]bool, cells)
	for cell, w := range world {
		if w < 0 || w >= cells || seen[w] || !reorder && w != cell {
			return rankErrorf("grid cells hold world ranks %v", world)
		}
		seen[w] = true
	}
	placed := gridCross(dims, periodic, func(cell int) int { return nodes[world[cell]] })
	rowMajor := gridCross(dims, periodic, func(cell int) int { return nodes[cell] })
	if placed > rowMajor {
		return rankErrorf("placement %v crosses nodes %v at %d neighbour pairs, row-major at %d", world, nodes, placed, rowMajor)
	}

	sum := []int64{int64(me)}
	if err := comm.Allreduce(ct.Comm, sum, sum, comm.Sum); err != nil {
		return err
	}
	if want := int64(cells * (cells - 1) / 2); sum[0] != want {
		return rankErrorf("allreduce over the grid: %d, want %d", sum[0], want)
	}
	return neighborInts(ct, x, dims, periodic, 2)
}

// neighborInts checks NeighborAlltoall with k int64s a block: block j that grid rank s
// sends holds s, j and the element's index; block i received comes from Neighbors()[i],
// which sent it as its block i^1 (the -1 neighbour sends its +1 block, and the reverse);
// ProcNull blocks keep their -1s.
func neighborInts(ct *comm.Cart, x, dims []int, periodic []bool, k int) error {
	blocks := 2 * len(dims)
	val := func(s, j, e int) int64 { return int64(s*10000 + j*100 + e) }
	send, recv := make([]int64, blocks*k), slices.Repeat([]int64{-1}, blocks*k)
	for j := range blocks {
		for e := range k {
			send[j*k+e] = val(ct.Rank(), j, e)
		}
	}
	if err := comm.NeighborAlltoall(ct, send, recv); err != nil {
		return fmt.Errorf("neighbor alltoall: %w", err)
	}
	for i := range blocks {
		lo, hi := collref.GridShift(dims, periodic, x, i/2, 1)
		src := lo
		if i%2 == 1 {
			src = hi
		}
		for e := range k {
			want := int64(-1)
			if src != comm.ProcNull {
				want = val(src, i^1, e)
			}
			if recv[i*k+e] != want {
				return rankErrorf("grid rank %d at %v: element %d of block %d (from %d) is %d, want %d", ct.Rank(), x, e, i, src, recv[i*k+e], want)
			}
		}
	}
	return nil
}

// TestInProcessCartReorder: with nodes dealt round robin, reorder moves ranks so that
// strictly fewer grid neighbours sit on different nodes (8 ranks, 4x2, the rows pair up on a
// node); on one node, without L3 facts (an in-process world has none), it keeps rank order.
func TestInProcessCartReorder(t *testing.T) {
	for _, tc := range []struct {
		shape    jobShape
		periodic []bool
		better   bool
	}{
		{topoShapes[len(topoShapes)-1], []bool{false, false}, true},
		{topoShapes[len(topoShapes)-1], []bool{false, true}, true},
		{jobShapes[2], []bool{false, true}, false},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.shape.name, tc.periodic), func(t *testing.T) {
			const n = 8
			dims := []int{4, 2}
			nodes := shapeNodes(tc.shape, n)
			runJob(t, n, tc.shape, func(c *comm.Comm) error {
				ct, err := c.Cart(dims, tc.periodic, true)
				if err != nil {
					return err
				}
				defer ct.Close()
				world, err := worldRanksOf(c, ct.Comm)
				if err != nil {
					return err
				}
				placed := gridCross(dims, tc.periodic, func(cell int) int { return nodes[world[cell]] })
				rowMajor := gridCross(dims, tc.periodic, func(cell int) int { return nodes[cell] })
				if tc.better && placed >= rowMajor {
					return rankErrorf("placement %v crosses nodes at %d pairs, row-major at %d", world, placed, rowMajor)
				}
				if !tc.better && !slices.Equal(world, topoIota(n)) {
					return rankErrorf("on one node the placement is %v, want rank order", world)
				}
				return neighborInts(ct, collref.GridCoords(dims, ct.Rank()), dims, tc.periodic, 3)
			})
		})
	}
}

// TestInProcessCartBeyondGrid: grids smaller than the communicator leave the other ranks with
// nil, nil; the grid works, and so does the world afterwards. A grid of no dimensions is one
// cell.
func TestInProcessCartBeyondGrid(t *testing.T) {
	forEachJob(t, func(c *comm.Comm) error {
		me, n := c.Rank(), c.Size()
		grids := [][]int{{1}, {}, {1, 1, 1}}
		if n > 1 {
			grids = append(grids, []int{n - 1})
		}
		if n > 2 {
			grids = append(grids, []int{(n - 1) / 2, 1, 2}, []int{2, (n - 1) / 2})
		}
		for _, dims := range grids {
			cells := topoProd(dims)
			periodic := make([]bool, len(dims))
			for d := range periodic {
				periodic[d] = d == 0
			}
			for _, reorder := range []bool{false, true} {
				ct, err := c.Cart(dims, periodic, reorder)
				if err != nil {
					return fmt.Errorf("Cart(%v): %w", dims, err)
				}
				if me >= cells {
					if ct != nil {
						return rankErrorf("rank %d beyond a grid of %d cells got one", me, cells)
					}
					// A nil grid is a closed communicator to the collectives.
					if err := comm.NeighborAlltoall(ct, []int64{}, []int64{}); !errors.Is(err, comm.ErrClosed) {
						return rankErrorf("neighbor alltoall on a nil grid: %v, want ErrClosed", err)
					}
					continue
				}
				if ct == nil || ct.Size() != cells {
					return rankErrorf("rank %d of a grid of %d cells got %v", me, cells, ct)
				}
				x := ct.Coords(ct.Rank())
				if len(x) != len(dims) {
					return rankErrorf("Coords %v in %d dimensions", x, len(dims))
				}
				sum := []int64{int64(me)}
				if err := comm.Allreduce(ct.Comm, sum, sum, comm.Sum); err != nil {
					return err
				}
				if want := int64(cells * (cells - 1) / 2); sum[0] != want {
					return rankErrorf("sum over a grid of %v: %d, want %d", dims, sum[0], want)
				}
				if err := neighborInts(ct, x, dims, periodic, 1); err != nil {
					return fmt.Errorf("grid %v: %w", dims, err)
				}
				if err := ct.Close(); err != nil {
					return err
				}
			}
		}
		return c.Barrier()
	})
}

// TestInProcessCartErrors: arguments that are no grid fail on every rank (none hangs), and
// ranks that pass other arguments than the rest all fail; the world works afterwards.
func TestInProcessCartErrors(t *testing.T) {
	forEachJob(t, func(c *comm.Comm) error {
		me, n := c.Rank(), c.Size()
		for i, tc := range []struct {
			dims     []int
			periodic []bool
		}{
			{[]int{0}, []bool{false}},
			{[]int{-1}, []bool{true}},
			{[]int{n, 0}, []bool{false, false}},
			{[]int{n + 1}, []bool{false}},
			{[]int{2, n}, []bool{false, false}},
			{[]int{n, 1, 2}, []bool{true, true, true}},
			{[]int{n}, []bool{true, false}},
			{[]int{n}, nil},
			{nil, []bool{true}},
		} {
			ct, err := c.Cart(tc.dims, tc.periodic, i%2 == 0)
			if !errors.Is(err, comm.ErrTopology) || ct != nil {
				return rankErrorf("Cart(%v, %v) = %v, %v; want ErrTopology", tc.dims, tc.periodic, ct, err)
			}
		}
		if n > 1 {
			// Rank 0's arguments differ but are valid: every rank gets ErrMismatch.
			periodic := []bool{me == 0}
			if ct, err := c.Cart([]int{n}, periodic, false); !errors.Is(err, comm.ErrMismatch) || ct != nil {
				return rankErrorf("Cart with rank 0's periodic flag different = %v, %v; want ErrMismatch", ct, err)
			}
			if ct, err := c.Cart([]int{n}, []bool{false}, me == n-1); !errors.Is(err, comm.ErrMismatch) || ct != nil {
				return rankErrorf("Cart with the last rank's reorder different = %v, %v; want ErrMismatch", ct, err)
			}
			// The last rank's are invalid: it gets ErrTopology, the others ErrMismatch.
			dims := []int{n}
			want := comm.ErrMismatch
			if me == n-1 {
				dims, want = []int{0}, comm.ErrTopology
			}
			if ct, err := c.Cart(dims, []bool{false}, false); !errors.Is(err, want) || ct != nil {
				return rankErrorf("Cart(%v) with the last rank's invalid = %v, %v; want %v", dims, ct, err, want)
			}
		}
		// The world and a valid grid still work.
		ct, err := c.Cart([]int{n}, []bool{true}, false)
		if err != nil {
			return err
		}
		defer ct.Close()
		if err := neighborInts(ct, []int{ct.Rank()}, []int{n}, []bool{true}, 1); err != nil {
			return err
		}
		return c.Barrier()
	})
}

// exchangeGrids are grids of n cells where a rank is its own neighbour (a periodic dimension
// of 1) or both neighbours are one rank (a periodic dimension of 2), and grids with ProcNull
// edges.
func exchangeGrids(n int) (dims [][]int, periodic [][]bool) {
	add := func(d []int, p []bool) { dims, periodic = append(dims, d), append(periodic, p) }
	add([]int{n}, []bool{true})
	add([]int{n}, []bool{false})
	add([]int{1, n}, []bool{true, false})
	add([]int{n, 1}, []bool{false, true})
	add([]int{1, 1, n}, []bool{true, true, true})
	if n%2 == 0 {
		add([]int{2, n / 2}, []bool{true, true})
		add([]int{n / 2, 2}, []bool{false, true})
	}
	d3, _ := comm.DimsCreate(n, []int{0, 0, 0})
	add(d3, []bool{true, false, true})
	return dims, periodic
}

// TestInProcessNeighborCollectives: NeighborAlltoall, NeighborAllgather and
// NeighborAlltoallv on grids where a rank is its own or a double neighbour and where edges
// give ProcNull, with empty, 8-byte and large (1 MiB a call in all) blocks.
func TestInProcessNeighborCollectives(t *testing.T) {
	forEachJob(t, func(c *comm.Comm) error {
		dims, periodic := exchangeGrids(c.Size())
		call := 0
		for i := range dims {
			ct, err := c.Cart(dims[i], periodic[i], i%2 == 1)
			if err != nil {
				return err
			}
			nb := 2 * len(dims[i])
			sizes := []int{0, 8}
			if i == 0 || i == len(dims)-1 {
				sizes = append(sizes, (1<<20)/nb)
			}
			for _, size := range sizes {
				call++
				if err := neighborBytes(ct, size, call); err != nil {
					return fmt.Errorf("grid %v periodic %v, %d-byte blocks: %w", dims[i], periodic[i], size, err)
				}
			}
			call++
			if err := neighborV(ct, call); err != nil {
				return fmt.Errorf("grid %v periodic %v: %w", dims[i], periodic[i], err)
			}
			if err := ct.Close(); err != nil {
				return err
			}
		}
		return nil
	})
}

// blockSeed is the payload seed of block j that rank s sends in call call.
func blockSeed(s, j, call int) int { return (call*97 + s*7 + j) % patternSeeds }

// untouchedBytes is what a receive buffer holds before the exchange (compared whole: byte
// loops cost more than the messaging under the race detector).
var untouchedBytes = sync.OnceValue(func() []byte { return bytes.Repeat([]byte{0xEE}, 1<<20) })

func untouched(n int) []byte { return slices.Clone(untouchedBytes()[:n]) }

func allUntouched(b []byte) bool { return bytes.Equal(b, untouchedBytes()[:len(b)]) }

// neighborBytes runs NeighborAlltoall and NeighborAllgather of size-byte blocks on ct and
// checks every block against its sender's pattern, ProcNull blocks untouched.
func neighborBytes(ct *comm.Cart, size, call int) error {
	srcs, _ := ct.Neighbors()
	me, nb := ct.Rank(), len(srcs)
	send := make([]byte, nb*size)
	for j := range nb {
		pattern(send[j*size:(j+1)*size], blockSeed(me, j, call))
	}
	recv := untouched(nb * size)
	if err := comm.NeighborAlltoall(ct, send, recv); err != nil {
		return fmt.Errorf("neighbor alltoall: %w", err)
	}
	for i, src := range srcs {
		b := recv[i*size : (i+1)*size]
		if src == comm.ProcNull {
			if !allUntouched(b) {
				return rankErrorf("neighbor alltoall wrote block %d, from ProcNull", i)
			}
			continue
		}
		if err := samePattern(b, blockSeed(src, i^1, call), fmt.Sprintf("neighbor alltoall block %d from %d", i, src)); err != nil {
			return err
		}
	}
	mine := pattern(make([]byte, size), blockSeed(me, 0, call))
	recv = untouched(nb * size)
	if err := comm.NeighborAllgather(ct, mine, recv); err != nil {
		return fmt.Errorf("neighbor allgather: %w", err)
	}
	for i, src := range srcs {
		b := recv[i*size : (i+1)*size]
		if src == comm.ProcNull {
			if !allUntouched(b) {
				return rankErrorf("neighbor allgather wrote block %d, from ProcNull", i)
			}
			continue
		}
		if err := samePattern(b, blockSeed(src, 0, call), fmt.Sprintf("neighbor allgather block %d from %d", i, src)); err != nil {
			return err
		}
	}
	return nil
}

// Elements of the irregular exchanges: who sent them, for which block (edge) and where in it.
func vElem(src, block, k, call int) int64 {
	return int64(call)<<40 | int64(src)<<24 | int64(block)<<16 | int64(k)
}

const vGap = int64(-7)

// checkV compares recv's blocks with want(i) (nil: must stay vGap) and every gap with vGap.
func checkV(recv []int64, counts, displs []int, want func(i int) []int64, what string) error {
	in := make([]bool, len(recv))
	for i, k := range counts {
		w := want(i)
		for e := range k {
			got := recv[displs[i]+e]
			in[displs[i]+e] = true
			if w == nil && got != vGap || w != nil && got != w[e] {
				exp := vGap
				if w != nil {
					exp = w[e]
				}
				return rankErrorf("%s: element %d of block %d is %#x, want %#x", what, e, i, got, exp)
			}
		}
	}
	for j, x := range recv {
		if !in[j] && x != vGap {
			return rankErrorf("%s: gap element %d written (%#x)", what, j, x)
		}
	}
	return nil
}

// neighborV runs NeighborAlltoallv on ct with counts that differ per block (zeros, and one
// block of 64 KiB), packed send and gapped recv; the block from the -1 neighbour is
// the one it sent its +1 neighbour. ProcNull blocks (given a count) stay as they were.
func neighborV(ct *comm.Cart, call int) error {
	srcs, dsts := ct.Neighbors()
	me := ct.Rank()
	count := func(s, j int) int {
		if s == 0 && j == 1 {
			return 8 << 10
		}
		return (s + 2*j) % 4
	}
	block := func(s, j, k int) []int64 {
		b := make([]int64, k)
		for e := range b {
			b[e] = vElem(s, j, e, call)
		}
		return b
	}
	sc, rc := make([]int, len(dsts)), make([]int, len(srcs))
	var send []int64
	for j := range dsts {
		sc[j] = count(me, j)
		send = append(send, block(me, j, sc[j])...)
	}
	for i, src := range srcs {
		rc[i] = 3 // a ProcNull block keeps its gap values
		if src != comm.ProcNull {
			rc[i] = count(src, i^1)
		}
	}
	rd, size := gapped(rc)
	recv := slices.Repeat([]int64{vGap}, size)
	if err := comm.NeighborAlltoallv(ct, send, sc, nil, recv, rc, rd); err != nil {
		return fmt.Errorf("neighbor alltoallv: %w", err)
	}
	return checkV(recv, rc, rd, func(i int) []int64 {
		if srcs[i] == comm.ProcNull {
			return nil
		}
		return block(srcs[i], i^1, rc[i])
	}, "neighbor alltoallv")
}

// TestInProcessCartSub: every choice of kept dimensions of 2- and 3-dimensional grids makes
// sub-grids of the right size, ranked by the kept coordinates, whose collectives sum over
// the right ranks and whose neighbours are the parent's along the kept dimensions; keeping
// nothing gives grids of one rank and no dimension; a wrong number of flags fails on every
// rank.
func TestInProcessCartSub(t *testing.T) {
	forEachJob(t, func(c *comm.Comm) error {
		n := c.Size()
		for nd := 2; nd <= 3; nd++ {
			dims, err := comm.DimsCreate(n, make([]int, nd))
			if err != nil {
				return err
			}
			periodic := make([]bool, nd)
			for d := range periodic {
				periodic[d] = d != 1
			}
			ct, err := c.Cart(dims, periodic, true)
			if err != nil {
				return err
			}
			for mask := range 1 << nd {
				keep := make([]bool, nd)
				for d := range keep {
					keep[d] = mask>>d&1 == 1
				}
				if err := cartSub(ct, dims, periodic, keep); err != nil {
					return fmt.Errorf("grid %v, Sub(%v): %w", dims, keep, err)
				}
			}
			for _, bad := range [][]bool{nil, make([]bool, nd+1), make([]bool, nd-1)} {
				if sub, err := ct.Sub(bad); !errors.Is(err, comm.ErrTopology) || sub != nil {
					return rankErrorf("Sub(%v) of a %d-dimensional grid = %v, %v; want ErrTopology", bad, nd, sub, err)
				}
			}
			if err := ct.Barrier(); err != nil {
				return err
			}
			if err := ct.Close(); err != nil {
				return err
			}
		}
		return nil
	})
}

func cartSub(ct *comm.Cart, dims []int, periodic []bool, keep []bool) error {
	sub, err := ct.Sub(keep)
	if err != nil {
		return err
	}
	defer sub.Close()
	x := collref.GridCoords(dims, ct.Rank())
	var sdims, sx []int
	var sper []bool
	for d := range dims {
		if keep[d] {
			sdims, sper, sx = append(sdims, dims[d]), append(sper, periodic[d]), append(sx, x[d])
		}
	}
	if sub.Size() != topoProd(sdims) || sub.Rank() != collref.GridCell(sdims, sx) {
		return rankErrorf("at %v: sub-grid rank %d of %d, want %d of %d", x, sub.Rank(), sub.Size(), collref.GridCell(sdims, sx), topoProd(sdims))
	}
	if !slices.Equal(sub.Dims(), sdims) || !slices.Equal(sub.Periodic(), sper) || !slices.Equal(sub.Coords(sub.Rank()), sx) {
		return rankErrorf("sub-grid dims %v periodic %v coords %v, want %v %v %v", sub.Dims(), sub.Periodic(), sub.Coords(sub.Rank()), sdims, sper, sx)
	}
	if r, err := sub.RankOf(sx); err != nil || r != sub.Rank() {
		return rankErrorf("sub-grid RankOf(%v) = %d, %v", sx, r, err)
	}
	// The members are the parent's ranks that agree on every dropped coordinate.
	want := int64(0)
	for r := range ct.Size() {
		y := collref.GridCoords(dims, r)
		same := true
		for d := range dims {
			same = same && (keep[d] || y[d] == x[d])
		}
		if same {
			want += int64(r)
		}
	}
	sum := []int64{int64(ct.Rank())}
	if err := comm.Allreduce(sub.Comm, sum, sum, comm.Sum); err != nil {
		return err
	}
	if sum[0] != want {
		return rankErrorf("sum of the parent ranks over the sub-grid: %d, want %d", sum[0], want)
	}
	// The sub-grid's neighbours are the parent's along the kept dimensions.
	srcs, _ := sub.Neighbors()
	got := slices.Repeat([]int64{-1}, len(srcs))
	if err := comm.NeighborAllgather(sub, []int64{int64(ct.Rank())}, got); err != nil {
		return err
	}
	sd := 0
	for d := range dims {
		if !keep[d] {
			continue
		}
		lo, hi := ct.Shift(d, 1)
		for i, w := range []int{lo, hi} {
			if w == comm.ProcNull {
				w = -1
			}
			if got[2*sd+i] != int64(w) || (srcs[2*sd+i] == comm.ProcNull) != (w == -1) {
				return rankErrorf("sub-grid neighbour %d is parent rank %d (sub rank %d), the parent's along dimension %d is %d", 2*sd+i, got[2*sd+i], srcs[2*sd+i], d, w)
			}
		}
		sd++
	}
	if len(sdims) == 0 {
		if sub.Size() != 1 || len(srcs) != 0 || len(sub.Coords(0)) != 0 || sub.Coords(0) == nil {
			return rankErrorf("sub-grid keeping nothing: size %d, neighbours %v, Coords(0) %v", sub.Size(), srcs, sub.Coords(0))
		}
		if err := comm.NeighborAlltoall(sub, []int64{}, []int64{}); err != nil {
			return fmt.Errorf("neighbor alltoall without neighbours: %w", err)
		}
	}
	return nil
}
