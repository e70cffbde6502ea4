package main

import (
	"math"
	"math/cmplx"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/collref"
)

// collectives checks Barrier, Bcast from every root, and Allreduce of every op on every
// numeric type against values computed locally.
func collectives(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	for range 3 {
		check(c.Barrier(), "barrier")
	}
	for root := range n {
		for _, count := range []int{0, 1, 1000, 300000} {
			buf := make([]int32, count)
			if me == root {
				for i := range buf {
					buf[i] = int32(i*root + 1)
				}
			}
			check(comm.Bcast(c, buf, root), "bcast root %d count %d", root, count)
			for i := range buf {
				if buf[i] != int32(i*root+1) {
					fail("bcast root %d: element %d = %d", root, i, buf[i])
				}
			}
		}
	}
	allreduceInts[int8](c)
	allreduceInts[int16](c)
	allreduceInts[int32](c)
	allreduceInts[int64](c)
	allreduceInts[int](c)
	allreduceInts[uint8](c)
	allreduceInts[uint16](c)
	allreduceInts[uint32](c)
	allreduceInts[uint64](c)
	allreduceInts[uint](c)
	allreduceFloats[float32](c)
	allreduceFloats[float64](c)
	allreduceFloats[celsius](c)

	// Complex: Sum and Prod only; Min is an error on every rank, not a panic.
	z := []complex128{complex(float64(me), 1)}
	sum := make([]complex128, 1)
	check(comm.Allreduce(c, z, sum, comm.Sum), "complex sum")
	want := complex(float64(n*(n-1)/2), float64(n))
	if cmplx.Abs(sum[0]-want) > 1e-9 {
		fail("complex sum %v, want %v", sum[0], want)
	}
	if err := comm.Allreduce(c, z, sum, comm.Min); err == nil {
		fail("min of complex numbers did not fail")
	}
	if err := comm.Allreduce(c, []float64{1}, []float64{0}, comm.Band); err == nil {
		fail("bitwise and of floats did not fail")
	}
	// In place, and bitwise equal on every rank.
	x := []float64{1 / float64(me+3), math.Pi * float64(me)}
	check(comm.Allreduce(c, x, x, comm.Sum), "in-place allreduce")
	all := make([]float64, 2*n)
	check(comm.Allreduce(c, spread(x, me, n), all, comm.Sum), "gather results")
	for r := range n {
		if math.Float64bits(all[2*r]) != math.Float64bits(x[0]) || math.Float64bits(all[2*r+1]) != math.Float64bits(x[1]) {
			fail("allreduce results differ between rank %d and rank %d", r, me)
		}
	}
}

type celsius float64

// spread puts v at block me of a vector of n blocks (zeros elsewhere): summing such vectors
// gathers every rank's v.
func spread(v []float64, me, n int) []float64 {
	out := make([]float64, len(v)*n)
	copy(out[me*len(v):], v)
	return out
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint
}

func allreduceInts[T integer](c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	vals := func(r int) []T { return []T{T(r + 1), T(r%3 + 1), T(1 << (r % 7))} }
	for _, op := range []comm.Op{comm.Sum, comm.Prod, comm.Min, comm.Max, comm.Band, comm.Bor, comm.Bxor, comm.Land, comm.Lor} {
		want := vals(0)
		for r := 1; r < n; r++ {
			v := vals(r)
			for i := range want {
				want[i] = collref.Apply(op, want[i], v[i])
			}
		}
		got := make([]T, 3)
		check(comm.Allreduce(c, vals(me), got, op), "allreduce %v on %T", op, got)
		for i := range got {
			if got[i] != want[i] {
				fail("allreduce %v on %T: element %d = %v, want %v", op, got, i, got[i], want[i])
			}
		}
	}
}

func allreduceFloats[T ~float32 | ~float64](c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	for _, op := range []comm.Op{comm.Sum, comm.Prod, comm.Min, comm.Max} {
		v := []T{T(me) + 0.5, T(n - me)}
		got := make([]T, 2)
		check(comm.Allreduce(c, v, got, op), "allreduce %v on %T", op, got)
		want := []T{0.5, T(n)}
		for r := 1; r < n; r++ {
			w := []T{T(r) + 0.5, T(n - r)}
			for i := range want {
				switch op {
				case comm.Sum:
					want[i] += w[i]
				case comm.Prod:
					want[i] *= w[i]
				case comm.Min:
					want[i] = min(want[i], w[i])
				case comm.Max:
					want[i] = max(want[i], w[i])
				}
			}
		}
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-5*math.Abs(float64(want[i]))+1e-9 {
				fail("allreduce %v on %T: element %d = %v, want %v", op, got, i, got[i], want[i])
			}
		}
	}
}
