package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/collref"
)

// number is the element types the matrix runs.
type number interface {
	int32 | int64 | float32 | float64
}

var (
	intOps   = []comm.Op{comm.Sum, comm.Prod, comm.Min, comm.Max, comm.Band, comm.Bor, comm.Bxor, comm.Land, comm.Lor}
	floatOps = []comm.Op{comm.Sum, comm.Prod, comm.Min, comm.Max}
	counts   = []int{0, 1, 7, 1000}
)

// big is 2^20/8 elements: 1 MiB of float64.
const big = 1 << 20 / 8

// fold reduces the parts part(ins[r]) of ranks [0, upto) in rank order.
func fold[T number](op comm.Op, ins [][]T, upto int, part func([]T) []T) []T {
	acc := append([]T(nil), part(ins[0])...)
	for r := 1; r < upto; r++ {
		x := part(ins[r])
		for i := range acc {
			acc[i] = collref.Apply(op, acc[i], x[i])
		}
	}
	return acc
}

func all[T number](x []T) []T { return x }

func same[T number](got, want []T, what string, rank int) {
	if len(got) != len(want) {
		fail("%s: rank %d has %d elements, want %d", what, rank, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			fail("%s: rank %d element %d = %v, want %v", what, rank, i, got[i], want[i])
		}
	}
}

func concat[T number](parts [][]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// matrix checks every collective for int32, int64, float32 and float64, every op on the first
// and last of them (Sum on the others), every count, and every root (three of them from 5
// ranks up), then the large counts and bitwise agreement of floating-point allreduce.
func matrix(c *comm.Comm) {
	for range 3 {
		check(c.Barrier(), "barrier")
	}
	typed[int32](c, intOps)
	typed[int64](c, intOps[:1])
	typed[float32](c, floatOps[:1])
	typed[float64](c, floatOps)
	large(c)
	bitwise[float32](c)
	bitwise[float64](c)
}

func roots(n int) []int {
	if n <= 4 {
		r := make([]int, n)
		for i := range r {
			r[i] = i
		}
		return r
	}
	return []int{0, n / 2, n - 1}
}

func typed[T number](c *comm.Comm, ops []comm.Op) {
	me, n := c.Rank(), c.Size()
	seed := 0
	for _, count := range counts {
		for _, op := range ops {
			seed++
			allreduce[T](c, op, count, seed, seed%2 == 0)
			for _, root := range roots(n) {
				in := collref.Input[T](me, count, seed)
				var out []T
				if me == root {
					out = make([]T, count)
				}
				check(comm.Reduce(c, in, out, op, root), "reduce %v count %d root %d", op, count, root)
				if ins, outs := toRoot0(c, in, out); me == 0 {
					same(outs[root], fold(op, ins, n, all), fmt.Sprintf("reduce %v %T", op, in), root)
				}
			}
			in := collref.Input[T](me, n*count, seed)
			out := make([]T, count)
			check(comm.ReduceScatterBlock(c, in, out, op), "reduce-scatter %v count %d", op, count)
			if ins, outs := toRoot0(c, in, out); me == 0 {
				for r := range n {
					block := func(x []T) []T { return x[r*count : (r+1)*count] }
					same(outs[r], fold(op, ins, n, block), fmt.Sprintf("reduce-scatter %v %T", op, in), r)
				}
			}
			in = collref.Input[T](me, count, seed)
			out = make([]T, count)
			check(comm.Scan(c, in, out, op), "scan %v count %d", op, count)
			if ins, outs := toRoot0(c, in, out); me == 0 {
				for r := range n {
					same(outs[r], fold(op, ins, r+1, all), fmt.Sprintf("scan %v %T", op, in), r)
				}
			}
		}
		moves[T](c, count, seed)
	}
}

func allreduce[T number](c *comm.Comm, op comm.Op, count, seed int, inPlace bool) {
	in := collref.Input[T](c.Rank(), count, seed)
	out := make([]T, count)
	if inPlace {
		copy(out, in)
		check(comm.Allreduce(c, out, out, op), "allreduce in place %v count %d", op, count)
	} else {
		check(comm.Allreduce(c, in, out, op), "allreduce %v count %d", op, count)
	}
	if ins, outs := toRoot0(c, in, out); c.Rank() == 0 {
		want := fold(op, ins, c.Size(), all)
		for r := range outs {
			same(outs[r], want, fmt.Sprintf("allreduce %v %T count %d", op, in, count), r)
		}
	}
}

// moves checks the collectives that only move data.
func moves[T number](c *comm.Comm, count, seed int) {
	me, n := c.Rank(), c.Size()
	for _, root := range roots(n) {
		buf := make([]T, count)
		if me == root {
			buf = collref.Input[T](me, count, seed)
		}
		check(comm.Bcast(c, buf, root), "bcast count %d root %d", count, root)
		if _, outs := toRoot0(c, buf, buf); me == 0 {
			for r := range outs {
				same(outs[r], collref.Input[T](root, count, seed), "bcast", r)
			}
		}
		in := collref.Input[T](me, count, seed)
		var out []T
		if me == root {
			out = make([]T, n*count)
		}
		check(comm.Gather(c, in, out, root), "gather count %d root %d", count, root)
		if ins, outs := toRoot0(c, in, out); me == 0 {
			same(outs[root], concat(ins), "gather", root)
		}
		in = nil
		if me == root {
			in = collref.Input[T](me, n*count, seed)
		}
		out = make([]T, count)
		check(comm.Scatter(c, in, out, root), "scatter count %d root %d", count, root)
		if _, outs := toRoot0(c, in, out); me == 0 {
			for r := range outs {
				same(outs[r], collref.Input[T](root, n*count, seed)[r*count:(r+1)*count], "scatter", r)
			}
		}
	}
	in, out := collref.Input[T](me, count, seed), make([]T, n*count)
	check(comm.Allgather(c, in, out), "allgather count %d", count)
	if ins, outs := toRoot0(c, in, out); me == 0 {
		for r := range outs {
			same(outs[r], concat(ins), "allgather", r)
		}
	}
	in, out = collref.Input[T](me, n*count, seed), make([]T, n*count)
	check(comm.Alltoall(c, in, out), "alltoall count %d", count)
	if ins, outs := toRoot0(c, in, out); me == 0 {
		for r := range outs {
			var want []T
			for src := range ins {
				want = append(want, ins[src][r*count:(r+1)*count]...)
			}
			same(outs[r], want, "alltoall", r)
		}
	}
}

// large runs 2^20/8 elements through allreduce, bcast and allgather.
func large(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	allreduce[float64](c, comm.Sum, big, 11, false)
	allreduce[int32](c, comm.Bxor, big, 12, true)
	buf := make([]float64, big)
	if me == n-1 {
		buf = collref.Input[float64](me, big, 13)
	}
	check(comm.Bcast(c, buf, n-1), "large bcast")
	if _, outs := toRoot0(c, buf, buf); me == 0 {
		for r := range outs {
			same(outs[r], collref.Input[float64](n-1, big, 13), "large bcast", r)
		}
	}
	in, out := collref.Input[float64](me, big/n, 14), make([]float64, n*(big/n))
	check(comm.Allgather(c, in, out), "large allgather")
	if ins, outs := toRoot0(c, in, out); me == 0 {
		for r := range outs {
			same(outs[r], concat(ins), "large allgather", r)
		}
	}
}

// bitwise: random floats of mixed magnitude, whose sum depends on the order of the additions,
// still give every rank the same bits.
func bitwise[T float32 | float64](c *comm.Comm) {
	for _, count := range []int{1, 1000, big} {
		rng := rand.New(rand.NewPCG(uint64(count), uint64(c.Rank())))
		in := make([]T, count)
		for i := range in {
			in[i] = T((rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(12)-6)))
		}
		out := make([]T, count)
		check(comm.Allreduce(c, in, out, comm.Sum), "allreduce of random floats")
		if _, outs := toRoot0(c, in, out); c.Rank() == 0 {
			for r := range outs {
				for i := range out {
					if math.Float64bits(float64(outs[r][i])) != math.Float64bits(float64(outs[0][i])) {
						fail("allreduce of %d random %T: rank %d element %d = %v, rank 0 has %v", count, in[0], r, i, outs[r][i], outs[0][i])
					}
				}
			}
		}
	}
}
