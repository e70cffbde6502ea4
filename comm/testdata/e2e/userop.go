package main

import (
	"slices"

	"github.com/gorun-hpc/gorun/comm"
)

// userOps checks ReduceFunc from every root, AllreduceFunc and ScanFunc with a
// non-commutative operation (2×2 matrix products, exact in small integers) against the
// product in rank order, x0·x1·…·x(n-1), and MaxLoc and MinLoc with ties (the lower rank
// wins), on the world (over shared memory, its node arena) and on a duplicate (point to
// point). The counts (32-byte elements) take every allreduce algorithm the table picks, and
// the arena's small and large reductions over several rounds.
func userOps(c *comm.Comm) {
	d, err := c.Dup()
	check(err, "dup")
	for _, cm := range []*comm.Comm{c, d} {
		for _, count := range []int{0, 1, 7, 300, 1100, 20000} {
			userMatrix(cm, count)
		}
		for _, count := range []int{1, 5, 3000} {
			userLoc(cm, count)
		}
	}
	check(d.Close(), "close dup")
}

// mat2 is a 2×2 matrix [[A, B], [C, D]].
type mat2 struct{ A, B, C, D float64 }

// matMul: inout = in · inout, in (the lower ranks' part) on the left.
func matMul(inout, in []mat2) {
	for i := range inout {
		x, y := in[i], inout[i]
		inout[i] = mat2{x.A*y.A + x.B*y.C, x.A*y.B + x.B*y.D, x.C*y.A + x.D*y.C, x.C*y.B + x.D*y.D}
	}
}

func matInput(r, count int) []mat2 {
	out := make([]mat2, count)
	for i := range out {
		k := r*5 + i*3 + count
		out[i] = mat2{float64(k % 3), float64((k/3)%3 - 1), float64((k/2)%2 - (k/5)%2), float64((k+r)%2 + 1)}
	}
	return out
}

func userMatrix(c *comm.Comm, count int) {
	me, n := c.Rank(), c.Size()
	prefix := make([][]mat2, n) // prefix[r] = x0·…·xr
	prefix[0] = matInput(0, count)
	for r := 1; r < n; r++ {
		prefix[r] = matInput(r, count)
		matMul(prefix[r], prefix[r-1])
	}
	send := matInput(me, count)
	for root := range n {
		var recv []mat2
		if me == root {
			recv = make([]mat2, count)
		}
		check(comm.ReduceFunc(c, send, recv, matMul, root), "reduce func of %d to %d", count, root)
		if me == root && !slices.Equal(recv, prefix[n-1]) {
			fail("reduce func of %d to %d: not the product in rank order", count, root)
		}
	}
	got := make([]mat2, count)
	check(comm.AllreduceFunc(c, send, got, matMul), "allreduce func of %d", count)
	if !slices.Equal(got, prefix[n-1]) {
		fail("allreduce func of %d: not the product in rank order", count)
	}
	check(comm.ScanFunc(c, send, got, matMul), "scan func of %d", count)
	if !slices.Equal(got, prefix[me]) {
		fail("scan func of %d: not the prefix product in rank order", count)
	}
	if !slices.Equal(send, matInput(me, count)) {
		fail("user reductions of %d changed send", count)
	}
}

// userLoc: values with few distinct values, so most elements tie across ranks.
func userLoc(c *comm.Comm, count int) {
	me, n := c.Rank(), c.Size()
	input := func(r int) []comm.ValIndex[float64] {
		out := make([]comm.ValIndex[float64], count)
		for i := range out {
			out[i] = comm.ValIndex[float64]{Value: float64((r*7 + i) % 3), Index: r}
		}
		return out
	}
	want := func(last, sign int) []comm.ValIndex[float64] {
		out := input(0)
		for r := 1; r <= last; r++ {
			for i, v := range input(r) {
				if sign*int(v.Value-out[i].Value) > 0 {
					out[i] = v
				}
			}
		}
		return out
	}
	for _, op := range []struct {
		name string
		f    func(inout, in []comm.ValIndex[float64])
		sign int
	}{{"maxloc", comm.MaxLoc[float64], 1}, {"minloc", comm.MinLoc[float64], -1}} {
		got := make([]comm.ValIndex[float64], count)
		check(comm.AllreduceFunc(c, input(me), got, op.f), "allreduce %s of %d", op.name, count)
		if !slices.Equal(got, want(n-1, op.sign)) {
			fail("allreduce %s of %d: wrong value or index", op.name, count)
		}
		check(comm.ScanFunc(c, input(me), got, op.f), "scan %s of %d", op.name, count)
		if !slices.Equal(got, want(me, op.sign)) {
			fail("scan %s of %d: wrong value or index", op.name, count)
		}
		check(comm.ReduceFunc(c, input(me), got, op.f, n-1), "reduce %s of %d", op.name, count)
		if me == n-1 && !slices.Equal(got, want(n-1, op.sign)) {
			fail("reduce %s of %d: wrong value or index", op.name, count)
		}
	}
}
