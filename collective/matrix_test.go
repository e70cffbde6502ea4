package collective

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gorun-hpc/gorun/internal/view"
)

// The exhaustive matrix: every collective, through every one of its algorithms (forced the
// way a user forces one, through the environment), on 1-9 ranks, for counts 0, 1, 7 and 1000,
// every element type and op (and a non-commutative user function for the reductions), every
// root, each compared with the naive reference.

var matrixCounts = []int{0, 1, 7, 1000}

// forcedEngine returns an Engine whose environment sets coll's algorithm to algo ("auto":
// the default table).
func forcedEngine(t testing.TB, coll Coll, algo algorithm) *Engine {
	t.Helper()
	e, err := newEngine(defaultTable(), func(k string) string {
		if k == coll.envVar() {
			return string(algo)
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func isReduction(c Coll) bool {
	return c == CollReduce || c == CollAllreduce || c == CollReduceScatter || c == CollScan
}

// matrixSteps returns the matrix's steps for coll on n ranks.
func matrixSteps(e *Engine, coll Coll, n int) []step {
	cases := elemCases
	if isReduction(coll) {
		cases = append(cases[:len(cases):len(cases)], concatElem)
	}
	roots := []int{0}
	if coll == CollBcast || coll == CollReduce || coll == CollGather || coll == CollScatter {
		roots = make([]int, n)
		for i := range roots {
			roots[i] = i
		}
	}
	var steps []step
	seed := 0
	for _, ec := range cases {
		ops := ec.ops
		if !isReduction(coll) {
			ops = ops[:1]
		}
		for _, op := range ops {
			for _, count := range matrixCounts {
				for _, root := range roots {
					seed++
					steps = append(steps, makeStep(e, coll, ec, op, count, root, seed))
				}
			}
		}
	}
	return steps
}

// makeStep builds one step of coll.
func makeStep(e *Engine, coll Coll, ec elemCase, op Op, count, root, seed int) step {
	switch coll {
	case CollBcast:
		return bcastStep(e, ec, count, root, seed)
	case CollReduce:
		return reduceStep(e, ec, op, count, root, seed)
	case CollAllreduce:
		return allreduceStep(e, ec, op, count, seed, seed%2 == 0)
	case CollGather:
		return gatherStep(e, ec, count, root, seed)
	case CollScatter:
		return scatterStep(e, ec, count, root, seed)
	case CollAllgather:
		return allgatherStep(e, ec, count, seed)
	case CollAlltoall:
		return alltoallStep(e, ec, count, seed)
	case CollReduceScatter:
		return reduceScatterStep(e, ec, op, count, seed)
	case CollScan:
		return scanStep(e, ec, op, count, seed)
	}
	panic(fmt.Sprint("no step for ", coll))
}

func TestReferenceMatrix(t *testing.T) {
	for coll := CollBcast; coll < CollGatherv; coll++ { // the irregular ones: vector_test.go
		for _, algo := range algosOf(coll) {
			e := forcedEngine(t, coll, algo)
			for n := 1; n <= 9; n++ {
				t.Run(fmt.Sprintf("%v/%v/n%d", coll, algo, n), func(t *testing.T) {
					t.Parallel()
					runSteps(t, n, matrixSteps(e, coll, n))
				})
			}
		}
	}
}

// TestLargeCounts runs 2^20/8 elements (1 MiB of float64) through allreduce, bcast and
// allgather with every algorithm and the default table, and the other collectives at a size
// where the table picks their large-message algorithms.
func TestLargeCounts(t *testing.T) {
	const big = 1 << 20 / 8
	f64, i32 := elemCases[3], elemCases[0]
	for _, coll := range []Coll{CollAllreduce, CollBcast, CollAllgather} {
		for _, algo := range append([]algorithm{"auto"}, algosOf(coll)...) {
			e := forcedEngine(t, coll, algo)
			for n := 1; n <= 9; n++ {
				t.Run(fmt.Sprintf("%v/%v/n%d", coll, algo, n), func(t *testing.T) {
					t.Parallel()
					var steps []step
					switch coll {
					case CollAllreduce:
						steps = []step{allreduceStep(e, f64, Sum, big, 1, false), allreduceStep(e, i32, Bxor, big, 2, true),
							allreduceStep(e, concatElem, opInvalid, big/2, 3, false)}
					case CollBcast:
						steps = []step{bcastStep(e, f64, big, 0, 1), bcastStep(e, f64, big+3, n-1, 2)}
					case CollAllgather:
						steps = []step{allgatherStep(e, f64, big/n, 1)}
					}
					runSteps(t, n, steps)
				})
			}
		}
	}
	e := forcedEngine(t, CollBarrier, "auto")
	for n := 1; n <= 9; n++ {
		t.Run(fmt.Sprintf("others/n%d", n), func(t *testing.T) {
			t.Parallel()
			runSteps(t, n, []step{
				reduceStep(e, f64, Sum, big, n-1, 1),
				gatherStep(e, f64, big/n, n/2, 2),
				scatterStep(e, f64, big/n, n-1, 3),
				alltoallStep(e, f64, 8192, 4),
				reduceScatterStep(e, f64, Max, big/n, 5),
				reduceScatterStep(e, concatElem, opInvalid, big/n/2, 6),
				scanStep(e, f64, Sum, big, 7),
			})
		})
	}
}

// randomFloats fills with values of mixed sign and magnitude, so that the result of a sum
// depends on the order of the additions: a rank that associated differently would differ.
func randomFloats[T float](ec elemCase) elemCase {
	ec.fill = func(b []byte, rank, seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(rank)))
		for i, s := 0, view.As[T](b); i < len(s); i++ {
			s[i] = T((rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(12)-6)))
		}
	}
	return ec
}

// nanFloats gives every rank NaNs with payloads of its own: which payload a sum of two NaNs
// keeps depends on the operand order, so ranks agree only if they combine in the same order.
func nanFloats(ec elemCase) elemCase {
	ec.name += "-nan"
	ec.fill = func(b []byte, rank, seed int) {
		for i, s := 0, view.As[uint64](b); i < len(s); i++ {
			s[i] = 0x7ff8000000000000 | uint64(rank+1)<<8 | uint64(i%7)
		}
	}
	return ec
}

// TestAllreduceBitwiseIdentical: with inputs whose sums depend on the association, every
// rank must still hold the same bits, for every algorithm, and close to the reference.
func TestAllreduceBitwiseIdentical(t *testing.T) {
	cases := []elemCase{randomFloats[float32](elemCases[2]), randomFloats[float64](elemCases[3]), nanFloats(elemCases[3])}
	for _, algo := range algosOf(CollAllreduce) {
		e := forcedEngine(t, CollAllreduce, algo)
		for n := 1; n <= 9; n++ {
			t.Run(fmt.Sprintf("%v/n%d", algo, n), func(t *testing.T) {
				t.Parallel()
				var steps []step
				for _, ec := range cases {
					for _, count := range []int{1, 7, 1000, 1 << 17} {
						s := allreduceStep(e, ec, Sum, count, count, false)
						s.check = func(ins, outs [][]byte) error { return sameOnEveryRank(ec, ins, outs) }
						steps = append(steps, s)
					}
				}
				runSteps(t, n, steps)
			})
		}
	}
}

// sameOnEveryRank checks that every rank's output has the bits of rank 0's, and that rank 0's
// is within rounding of the reference sum.
func sameOnEveryRank(ec elemCase, ins, outs [][]byte) error {
	for r := range outs {
		if err := sameBytes(outs[r], outs[0], r); err != nil {
			return fmt.Errorf("not bitwise equal to rank 0: %w", err)
		}
	}
	want, got := toFloat64s(ec, refReduce(ec, Sum, ins, 0, len(ins), whole)), toFloat64s(ec, outs[0])
	eps := 1e-12
	if ec.kind == kindFloat32 {
		eps = 1e-5
	}
	bound := make([]float64, len(want)) // sum of magnitudes: the scale of the rounding error
	for _, in := range ins {
		for i, v := range toFloat64s(ec, in) {
			bound[i] += math.Abs(v)
		}
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > eps*bound[i]*float64(len(ins)) {
			return fmt.Errorf("element %d = %v, reference %v", i, got[i], want[i])
		}
	}
	return nil
}

func toFloat64s(ec elemCase, b []byte) []float64 {
	if ec.kind == kindFloat64 {
		return view.As[float64](b)
	}
	s := view.As[float32](b)
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}
