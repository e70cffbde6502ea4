package main

import (
	"fmt"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/collref"
)

// collv checks Gatherv, Scatterv, Allgatherv, Alltoallv (struct elements, irregular counts
// with zeros, one block large enough for the transports' rendezvous paths, packed and gapped
// displacements, every root), ReduceScatter with counts and Exscan. Inputs follow a formula,
// so each rank computes what it should hold itself.

type rec struct {
	Key     uint64
	Payload [3]float64
}

var gap = rec{Key: 0xDEAD, Payload: [3]float64{-1, -1, -1}}

func recBlock(src, dst, count, seed int) []rec {
	b := make([]rec, count)
	for k := range b {
		b[k] = rec{Key: uint64(src)<<32 | uint64(dst+1)<<16 | uint64(k), Payload: [3]float64{float64(seed), float64(k), -float64(src)}}
	}
	return b
}

func filled(n int) []rec {
	b := make([]rec, n)
	for i := range b {
		b[i] = gap
	}
	return b
}

// patterns: zeros scattered; all zero; one block of 4000 elements (128 KB).
func patterns(n int) [][]int {
	a, z, b := make([]int, n), make([]int, n), make([]int, n)
	for i := range n {
		if i%3 != 1 {
			a[i] = 2*i + 1
		}
		if i == n/2 {
			b[i] = 4000
		} else if i%2 == 1 {
			b[i] = 5
		}
	}
	return [][]int{a, z, b}
}

// layout returns displacements (nil: packed, or reverse order with one-element gaps) and the
// buffer length.
func layout(counts []int, gapped bool) ([]int, int) {
	if !gapped {
		t := 0
		for _, k := range counts {
			t += k
		}
		return nil, t
	}
	d, at := make([]int, len(counts)), 1
	for i := len(counts) - 1; i >= 0; i-- {
		d[i] = at
		at += counts[i] + 1
	}
	return d, at
}

func at(displs, counts []int, i int) int {
	if displs != nil {
		return displs[i]
	}
	s := 0
	for _, k := range counts[:i] {
		s += k
	}
	return s
}

func checkBlocks(buf []rec, counts, displs []int, want func(int) []rec, what string) {
	in := make([]bool, len(buf))
	for i, k := range counts {
		d := at(displs, counts, i)
		w := want(i)
		for j := range k {
			if buf[d+j] != w[j] {
				fail("%s: block %d element %d is %+v, want %+v", what, i, j, buf[d+j], w[j])
			}
			in[d+j] = true
		}
	}
	for j, x := range buf {
		if !in[j] && x != gap {
			fail("%s: gap element %d written", what, j)
		}
	}
}

func collv(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	seed := 0
	for _, counts := range patterns(n) {
		for _, gapped := range []bool{false, true} {
			displs, size := layout(counts, gapped)
			for root := range n {
				seed++
				var recv []rec
				if me == root {
					recv = filled(size)
				}
				check(comm.Gatherv(c, recBlock(me, root, counts[me], seed), recv, counts, displs, root), "gatherv")
				if me == root {
					checkBlocks(recv, counts, displs, func(i int) []rec { return recBlock(i, root, counts[i], seed) }, "gatherv")
				}
				var send []rec
				if me == root {
					send = filled(size)
					for i := range n {
						copy(send[at(displs, counts, i):], recBlock(root, i, counts[i], seed))
					}
				}
				mine := filled(counts[me])
				check(comm.Scatterv(c, send, counts, displs, mine, root), "scatterv")
				checkBlocks(mine, counts[me:me+1], nil, func(int) []rec { return recBlock(root, me, counts[me], seed) }, "scatterv")
			}
			seed++
			all := filled(size)
			check(comm.Allgatherv(c, recBlock(me, -1, counts[me], seed), all, counts, displs), "allgatherv")
			checkBlocks(all, counts, displs, func(i int) []rec { return recBlock(i, -1, counts[i], seed) }, "allgatherv")
		}
	}
	for p := range 2 {
		a2a := func(i, j int) int {
			if p == 1 && (i+j)%2 == 0 {
				return 3000 // 96 KB blocks: pairwise for those ranks
			}
			return (i + 2*j) % 4
		}
		sc, rc := make([]int, n), make([]int, n)
		for j := range n {
			sc[j], rc[j] = a2a(me, j), a2a(j, me)
		}
		for _, gapped := range []bool{false, true} {
			seed++
			sd, ssize := layout(sc, gapped)
			rd, rsize := layout(rc, !gapped)
			send := filled(ssize)
			for j := range n {
				copy(send[at(sd, sc, j):], recBlock(me, j, sc[j], seed))
			}
			recv := filled(rsize)
			check(comm.Alltoallv(c, send, sc, sd, recv, rc, rd), "alltoallv")
			checkBlocks(recv, rc, rd, func(i int) []rec { return recBlock(i, me, rc[i], seed) }, "alltoallv")
		}
	}
	vReduce[int32](c, intOps)
	vReduce[float64](c, floatOps)
	if me == 0 {
		fmt.Printf("coll collv ok on %d ranks\n", n)
	}
}

func vReduce[T number](c *comm.Comm, ops []comm.Op) {
	me, n := c.Rank(), c.Size()
	even := make([]int, n) // one large even split
	for i := range even {
		even[i] = big / n
	}
	for _, counts := range append(patterns(n), even) {
		total := 0
		for _, k := range counts {
			total += k
		}
		ins := make([][]T, n)
		for r := range ins {
			ins[r] = collref.Input[T](r, total, 11)
		}
		off := at(nil, counts, me)
		for _, op := range ops {
			recv := make([]T, counts[me])
			check(comm.ReduceScatter(c, ins[me], recv, counts, op), "reduce-scatter %v", op)
			same(recv, fold(op, ins, n, func(x []T) []T { return x[off : off+counts[me]] }), fmt.Sprintf("reduce-scatter %v", op), me)
		}
	}
	for _, count := range []int{0, 7, 1000} {
		ins := make([][]T, n)
		for r := range ins {
			ins[r] = collref.Input[T](r, count, 13)
		}
		for _, op := range ops {
			recv := collref.Input[T](99, count, 1)
			want := append([]T(nil), recv...)
			if me > 0 {
				want = fold(op, ins, me, all[T])
			}
			check(comm.Exscan(c, ins[me], recv, op), "exscan %v", op)
			same(recv, want, fmt.Sprintf("exscan %v", op), me)
		}
	}
}

// collvMismatch runs with GORUN_CHECK=1: irregular calls whose counts disagree between ranks
// fail with ErrMismatch on every rank, and the communicator stays usable.
func collvMismatch(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	if n < 2 {
		return
	}
	expect := expectMismatch(me)
	ones := make([]int, n)
	for i := range ones {
		ones[i] = 1
	}
	// Rank n-1 sends two elements where the root's counts say one.
	send := make([]int64, 1+me/(n-1))
	expect(comm.Gatherv(c, send, make([]int64, n), ones, nil, 0), "gatherv, a sender's count differs from the root's")
	expect(comm.Scatterv(c, make([]int64, n), ones, nil, send, 0), "scatterv, a receiver's count differs from the root's")
	// Counts vectors that differ between ranks (each consistent with its own len(send)).
	counts := append([]int(nil), ones...)
	if me == 0 {
		counts[n-1] = 2
	}
	expect(comm.Allgatherv(c, []int64{1}, make([]int64, n+1), counts, nil), "allgatherv with different counts vectors")
	sum := n // the sum of this rank's counts
	if me == 0 {
		sum = n + 1
	}
	expect(comm.ReduceScatter(c, make([]int64, sum), make([]int64, 1), counts, comm.Sum), "reduce-scatter with different counts vectors")
	// Rank 0 sends rank 1 two elements; rank 1 expects one.
	sc := append([]int(nil), ones...)
	if me == 0 {
		sc[1] = 2
	}
	tot := 0
	for _, k := range sc {
		tot += k
	}
	expect(comm.Alltoallv(c, make([]int64, tot), sc, nil, make([]int64, n), ones, nil), "alltoallv with a sender and receiver disagreeing")
	// And correct calls still work.
	recv := make([]int64, n)
	check(comm.Alltoallv(c, make([]int64, n), ones, nil, recv, ones, nil), "alltoallv after the mismatches")
	check(comm.Allgatherv(c, []int64{int64(me)}, recv, ones, nil), "allgatherv after the mismatches")
	for i, x := range recv {
		if x != int64(i) {
			fail("allgatherv after the mismatches: %v", recv)
		}
	}
	if me == 0 {
		fmt.Println("collvmismatch: every rank got ErrMismatch for every disagreement")
	}
}
