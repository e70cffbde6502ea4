// Command coll is the rank program of comm's end-to-end collective tests: `coll MODE` runs one
// group of checks on every rank and exits non-zero with a "FAIL" line on the first wrong
// result. The algorithms are whatever the environment picks (GORUN_*_ALGO), so the test runs
// the same program under several settings.
//
//	matrix    every collective against a naive reference: every rank's input and output go to
//	          rank 0 by point-to-point messages, and rank 0 computes what they should be
//	mismatch  with GORUN_CHECK=1: ranks that disagree on counts or roots get errors, not hangs
//	badalgo   with GORUN_ALLREDUCE_ALGO=bogus: every collective fails, naming the variable
//	collv     Gatherv, Scatterv, Allgatherv, Alltoallv, ReduceScatter and Exscan (collv.go)
//	collvmismatch  with GORUN_CHECK=1: irregular calls whose counts disagree get ErrMismatch
package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/rankprog"
)

func main() {
	rankprog.Main("coll", map[string]func(*comm.Comm){
		"matrix":        matrix,
		"mismatch":      mismatch,
		"badalgo":       badAlgo,
		"collv":         collv,
		"collvmismatch": collvMismatch,
		"derived":       derived,
	})
}

var (
	fail  = rankprog.Fail
	check = rankprog.Check
)

// Tags of the naive gather (point-to-point context: apart from the collectives' traffic).
const tagLens, tagIn, tagOut = 900, 901, 902

// toRoot0 is the naive gather: every rank sends its input and output to rank 0, which
// returns all of them (nil elsewhere).
func toRoot0[T number](c *comm.Comm, in, out []T) (ins, outs [][]T) {
	if c.Rank() != 0 {
		check(comm.Send(c, []int64{int64(len(in)), int64(len(out))}, 0, tagLens), "send lengths")
		check(comm.Send(c, in, 0, tagIn), "send input")
		check(comm.Send(c, out, 0, tagOut), "send output")
		return nil, nil
	}
	n := c.Size()
	ins, outs = make([][]T, n), make([][]T, n)
	ins[0], outs[0] = in, out
	lens := make([]int64, 2)
	for r := 1; r < n; r++ {
		_, err := comm.Recv(c, lens, r, tagLens)
		check(err, "recv lengths from %d", r)
		ins[r], outs[r] = make([]T, lens[0]), make([]T, lens[1])
		_, err = comm.Recv(c, ins[r], r, tagIn)
		check(err, "recv input from %d", r)
		_, err = comm.Recv(c, outs[r], r, tagOut)
		check(err, "recv output from %d", r)
	}
	return ins, outs
}

// expectMismatch returns a check, for rank me, that err is ErrMismatch.
func expectMismatch(me int) func(err error, what string) {
	return func(err error, what string) {
		if !errors.Is(err, comm.ErrMismatch) {
			fail("%s: rank %d got %v, want ErrMismatch", what, me, err)
		}
	}
}

// mismatch runs with GORUN_CHECK=1: calls whose ranks disagree fail on every rank, and the
// communicator stays usable afterwards.
func mismatch(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	if n < 2 {
		return
	}
	expect := expectMismatch(me)
	// Counts that differ between ranks.
	x := make([]float64, 10+me%2)
	expect(comm.Allreduce(c, x, x, comm.Sum), "allreduce with different counts")
	expect(comm.Bcast(c, make([]int32, 5+me), 0), "bcast with different counts")
	expect(comm.Gather(c, make([]int64, 1+me%2), make([]int64, n*(1+me%2)), 0), "gather with different counts")
	// Roots that differ.
	expect(comm.Bcast(c, make([]int32, 5), me%2), "bcast with different roots")
	expect(comm.Reduce(c, []int64{1}, []int64{0}, comm.Sum, me%2), "reduce with different roots")
	// Different ops.
	op := comm.Sum
	if me == n-1 {
		op = comm.Max
	}
	expect(comm.Allreduce(c, []int32{1}, []int32{0}, op), "allreduce with different ops")
	// One rank's buffer is wrong: it gets ErrBuffer, the others ErrMismatch.
	recv := make([]float32, 3)
	if me == 1 {
		recv = recv[:2]
	}
	err := comm.Allreduce(c, []float32{1, 2, 3}, recv, comm.Sum)
	if me == 1 {
		if !errors.Is(err, comm.ErrBuffer) {
			fail("rank 1 with a short buffer got %v, want ErrBuffer", err)
		}
	} else {
		expect(err, "allreduce where rank 1's buffer is short")
	}
	// And a correct call still works.
	sum := []int64{0}
	check(comm.Allreduce(c, []int64{int64(me)}, sum, comm.Sum), "allreduce after the mismatches")
	if sum[0] != int64(n*(n-1)/2) {
		fail("allreduce after the mismatches: %d", sum[0])
	}
	if me == 0 {
		fmt.Println("mismatch: every rank got an error for every disagreement")
	}
}

// badAlgo runs with GORUN_ALLREDUCE_ALGO=bogus: every collective reports the setting.
func badAlgo(c *comm.Comm) {
	err := comm.Allreduce(c, []float64{1}, []float64{0}, comm.Sum)
	if err == nil || !strings.Contains(err.Error(), "GORUN_ALLREDUCE_ALGO") {
		fail("allreduce with GORUN_ALLREDUCE_ALGO=bogus: %v", err)
	}
	if err := c.Barrier(); err == nil {
		fail("barrier with GORUN_ALLREDUCE_ALGO=bogus did not fail")
	}
	if c.Rank() == 0 {
		fmt.Println("badalgo:", err)
	}
}
