package comm_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/collref"
)

// The irregular collectives and Exscan through the public API, in process: struct elements
// for the data movement, irregular counts with zeros, packed and gapped displacements (gaps
// must stay untouched), every root; ReduceScatter and Exscan against collref's reference, on
// the world, a duplicate and the halves of a split.

type vrec struct {
	Key     uint64
	Payload [3]float64
}

// vrecOf is element k of the block rank src sends rank dst in call seed.
func vrecOf(src, dst, k, seed int) vrec {
	return vrec{Key: uint64(src)<<32 | uint64(dst+1)<<16 | uint64(k), Payload: [3]float64{float64(seed), float64(k) / 2, -float64(src)}}
}

func vrecBlock(src, dst, count, seed int) []vrec {
	b := make([]vrec, count)
	for k := range b {
		b[k] = vrecOf(src, dst, k, seed)
	}
	return b
}

var vrecGap = vrec{Key: 0xDEAD, Payload: [3]float64{-1, -1, -1}}

func vrecFilled(n int) []vrec {
	b := make([]vrec, n)
	for i := range b {
		b[i] = vrecGap
	}
	return b
}

// vcountPatterns are count vectors for n ranks: zeros scattered, all zero, one large block.
func vcountPatterns(n int) [][]int {
	irregular, zero, big := make([]int, n), make([]int, n), make([]int, n)
	for i := range n {
		if i%3 != 1 {
			irregular[i] = 2*i + 1
		}
		if i == n-1 {
			big[i] = 400 // 12.8 KB: over the tree threshold
		} else if i%2 == 0 {
			big[i] = 3
		}
	}
	return [][]int{irregular, zero, big}
}

// gapped returns displacements in reverse rank order with one element between and around
// blocks, and the buffer length they need.
func gapped(counts []int) ([]int, int) {
	d := make([]int, len(counts))
	at := 1
	for i := len(counts) - 1; i >= 0; i-- {
		d[i] = at
		at += counts[i] + 1
	}
	return d, at
}

// vlayouts returns (displs, length) pairs for counts: packed (nil) and gapped.
func vlayouts(counts []int) (ds [][]int, sizes []int) {
	total := 0
	for _, k := range counts {
		total += k
	}
	g, size := gapped(counts)
	return [][]int{nil, g}, []int{total, size}
}

func displ(displs, counts []int, i int) int {
	if displs != nil {
		return displs[i]
	}
	at := 0
	for _, k := range counts[:i] {
		at += k
	}
	return at
}

// checkVBlocks compares every block of buf with want(i) and every element outside the blocks
// with vrecGap.
func checkVBlocks(buf []vrec, counts, displs []int, want func(i int) []vrec, what string) error {
	in := make([]bool, len(buf))
	for i, k := range counts {
		d := displ(displs, counts, i)
		if err := sameElems(buf[d:d+k], want(i), fmt.Sprintf("%s block %d", what, i)); err != nil {
			return err
		}
		for j := d; j < d+k; j++ {
			in[j] = true
		}
	}
	for j, x := range buf {
		if !in[j] && x != vrecGap {
			return fmt.Errorf("%s: gap element %d written", what, j)
		}
	}
	return nil
}

func vMovement(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	seed := 0
	for _, counts := range vcountPatterns(n) {
		ds, sizes := vlayouts(counts)
		for li, displs := range ds {
			for root := range n {
				seed++
				var recv []vrec
				if me == root {
					recv = vrecFilled(sizes[li])
				}
				if err := comm.Gatherv(c, vrecBlock(me, root, counts[me], seed), recv, counts, displs, root); err != nil {
					return fmt.Errorf("gatherv: %w", err)
				}
				if me == root {
					if err := checkVBlocks(recv, counts, displs, func(i int) []vrec { return vrecBlock(i, root, counts[i], seed) }, "gatherv"); err != nil {
						return err
					}
				}
				var send []vrec
				if me == root {
					send = vrecFilled(sizes[li])
					for i := range n {
						copy(send[displ(displs, counts, i):], vrecBlock(root, i, counts[i], seed))
					}
				}
				mine := vrecFilled(counts[me])
				if err := comm.Scatterv(c, send, counts, displs, mine, root); err != nil {
					return fmt.Errorf("scatterv: %w", err)
				}
				if err := sameElems(mine, vrecBlock(root, me, counts[me], seed), "scatterv"); err != nil {
					return err
				}
			}
			seed++
			all := vrecFilled(sizes[li])
			if err := comm.Allgatherv(c, vrecBlock(me, -1, counts[me], seed), all, counts, displs); err != nil {
				return fmt.Errorf("allgatherv: %w", err)
			}
			if err := checkVBlocks(all, counts, displs, func(i int) []vrec { return vrecBlock(i, -1, counts[i], seed) }, "allgatherv"); err != nil {
				return err
			}
		}
	}
	// Alltoallv: rank i sends rank j (i+2j)%4 elements (zeros scattered), or 300 from rank 0.
	a2a := func(i, j int) int {
		if i == 0 && j == n-1 {
			return 300
		}
		return (i + 2*j) % 4
	}
	sc, rc := make([]int, n), make([]int, n)
	for j := range n {
		sc[j], rc[j] = a2a(me, j), a2a(j, me)
	}
	sds, ssizes := vlayouts(sc)
	rds, rsizes := vlayouts(rc)
	for l := range 2 {
		seed++
		send := vrecFilled(ssizes[l])
		for j := range n {
			copy(send[displ(sds[l], sc, j):], vrecBlock(me, j, sc[j], seed))
		}
		recv := vrecFilled(rsizes[1-l])
		if err := comm.Alltoallv(c, send, sc, sds[l], recv, rc, rds[1-l]); err != nil {
			return fmt.Errorf("alltoallv: %w", err)
		}
		if err := checkVBlocks(recv, rc, rds[1-l], func(i int) []vrec { return vrecBlock(i, me, rc[i], seed) }, "alltoallv"); err != nil {
			return err
		}
	}
	return nil
}

func vReductions[T collNumber](c *comm.Comm, m *memo, ops []comm.Op) error {
	me, n := c.Rank(), c.Size()
	for _, counts := range vcountPatterns(n) {
		total := 0
		for _, k := range counts {
			total += k
		}
		for _, op := range ops {
			ins := sharedInputs[T](m, n, total, 7)
			all := prefixes[T](m, op, n, total, 7)[n-1]
			recv := make([]T, counts[me])
			if err := comm.ReduceScatter(c, ins[me], recv, counts, op); err != nil {
				return fmt.Errorf("reduce-scatter %v: %w", op, err)
			}
			off := displ(nil, counts, me)
			if err := sameElems(recv, all[off:off+counts[me]], fmt.Sprintf("reduce-scatter %v %v", op, counts)); err != nil {
				return err
			}
		}
	}
	for _, count := range []int{0, 1, 7, 100} {
		for _, op := range ops {
			ins := sharedInputs[T](m, n, count, 3)
			pre := prefixes[T](m, op, n, count, 3)
			recv := collref.Input[T](me+100, count, 5) // what rank 0 must keep
			keep := append([]T(nil), recv...)
			if err := comm.Exscan(c, ins[me], recv, op); err != nil {
				return fmt.Errorf("exscan %v: %w", op, err)
			}
			want := keep
			if me > 0 {
				want = pre[me-1]
			}
			if err := sameElems(recv, want, fmt.Sprintf("exscan %v of %d", op, count)); err != nil {
				return err
			}
			inPlace := append([]T(nil), ins[me]...)
			if err := comm.Exscan(c, inPlace, inPlace, op); err != nil {
				return fmt.Errorf("exscan in place %v: %w", op, err)
			}
			want = ins[me]
			if me > 0 {
				want = pre[me-1]
			}
			if err := sameElems(inPlace, want, fmt.Sprintf("exscan in place %v of %d", op, count)); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestInProcessCollectivesV(t *testing.T) {
	m := newMemo()
	shapes := []jobShape{jobShapes[0], jobShapes[2], jobShapes[3]}
	forJobs(t, shapes, inProcRanks, func(c *comm.Comm) error {
		return onCommunicators(c, func(c *comm.Comm) error {
			if err := vMovement(c); err != nil {
				return err
			}
			if err := vReductions[int32](c, m, intOps); err != nil {
				return err
			}
			return vReductions[float64](c, m, floatOps)
		})
	})
}

// TestInProcessCollectiveVErrors: arguments every rank gets wrong are an error on every rank
// before anything is sent, and the communicator stays usable.
func TestInProcessCollectiveVErrors(t *testing.T) {
	type withPointer struct{ P *int }
	forJobs(t, jobShapes[:2], inProcRanks, func(c *comm.Comm) error {
		n, me := c.Size(), c.Rank()
		ones := make([]int, n)
		for i := range ones {
			ones[i] = 1
		}
		neg := append([]int(nil), ones...)
		neg[n-1] = -1
		for _, tc := range []struct {
			what string
			err  error
			want error
		}{
			{"gatherv to root n", comm.Gatherv(c, []int32{1}, make([]int32, n), ones, nil, n), comm.ErrRank},
			{"gatherv with short counts", comm.Gatherv(c, []int32{1}, make([]int32, n), ones[1:], nil, me), comm.ErrBuffer},
			{"gatherv into a short buffer", comm.Gatherv(c, []int32{1}, make([]int32, n-1), ones, nil, me), comm.ErrBuffer},
			{"scatterv from root -1", comm.Scatterv(c, make([]int32, n), ones, nil, []int32{0}, -1), comm.ErrRank},
			{"allgatherv with a negative count", comm.Allgatherv(c, []int32{1}, make([]int32, n), neg, nil), comm.ErrBuffer},
			{"allgatherv with counts[me] != len(send)", comm.Allgatherv(c, []int32{1, 2}, make([]int32, 2*n), ones, nil), comm.ErrBuffer},
			{"alltoallv with short recvCounts", comm.Alltoallv(c, make([]int32, n), ones, nil, make([]int32, n), ones[1:], nil), comm.ErrBuffer},
			{"alltoallv with a block outside send", comm.Alltoallv(c, make([]int32, n-1), ones, nil, make([]int32, n), ones, nil), comm.ErrBuffer},
			{"gatherv of a pointer type", comm.Gatherv(c, []withPointer{{}}, make([]withPointer, n), ones, nil, 0), comm.ErrType},
			{"alltoallv of a pointer type", comm.Alltoallv(c, make([]withPointer, n), ones, nil, make([]withPointer, n), ones, nil), comm.ErrType},
			{"reduce-scatter of a short send", comm.ReduceScatter(c, make([]int32, n-1), make([]int32, 1), ones, comm.Sum), comm.ErrBuffer},
			{"reduce-scatter with a bitwise op on floats", comm.ReduceScatter(c, make([]float64, n), make([]float64, 1), ones, comm.Bor), comm.ErrOp},
			{"exscan into a shorter buffer", comm.Exscan(c, []int32{1, 2}, []int32{0}, comm.Sum), comm.ErrBuffer},
		} {
			if !errors.Is(tc.err, tc.want) {
				return fmt.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
			}
		}
		past := make([]int, n)
		past[n-1] = n // block n-1 at n: one past the end of n elements
		if err := comm.Scatterv(c, make([]int32, n), ones, past, []int32{0}, me); !errors.Is(err, comm.ErrBuffer) {
			return fmt.Errorf("scatterv with a block past the end: %v, want ErrBuffer", err)
		}
		return vMovement(c)
	})
}
