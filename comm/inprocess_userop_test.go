package comm_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gorun-hpc/gorun/comm"
)

// User-defined reductions (ReduceFunc, AllreduceFunc, ScanFunc) in process, with operations
// that are associative but not commutative, against a sequential reference in rank order:
// x0 ⊕ x1 ⊕ … ⊕ x(n-1), f(inout, in) with in from the lower ranks, as MPI's invec. The
// counts make the decision table pick each allreduce algorithm for 32-byte elements:
// recursive doubling (up to 8 KiB), Rabenseifner (up to 32 KiB), and above that ring for a
// size that is not a power of two (which a non-commutative op must not take) or Rabenseifner.
// Every job is bounded by runJob's jobTimeout.

var userOpCounts = []int{0, 1, 7, 300, 1100}

// userOpRanks: every job size from 1 to 9.
var userOpRanks = []int{1, 2, 3, 4, 5, 6, 7, 8, 9}

// mat2 is a 2×2 matrix [[A, B], [C, D]]: under multiplication, associative and not
// commutative. The inputs' entries are small integers, so every product is exact.
type mat2 struct{ A, B, C, D float64 }

func (x mat2) mul(y mat2) mat2 {
	return mat2{x.A*y.A + x.B*y.C, x.A*y.B + x.B*y.D, x.C*y.A + x.D*y.C, x.C*y.B + x.D*y.D}
}

// matMul is the user function: inout = in · inout, in from the lower ranks on the left.
func matMul(inout, in []mat2) {
	for i := range inout {
		inout[i] = in[i].mul(inout[i])
	}
}

// matInput is rank r's input: entries in {-1, 0, 1, 2}, differing by rank and element.
func matInput(r, count, seed int) []mat2 {
	out := make([]mat2, count)
	for i := range out {
		k := r*5 + i*3 + seed
		out[i] = mat2{float64(k%3 + 0), float64((k/3)%3 - 1), float64((k/2)%2 - (k/5)%2), float64((k+r)%2 + 1)}
	}
	return out
}

// word is a string of up to 15 letters in a fixed array; ⊕ concatenates.
type word struct {
	N int8
	S [15]byte
}

func concatWords(inout, in []word) {
	for i := range inout {
		w := in[i]
		for j := range inout[i].N {
			w.S[w.N+j] = inout[i].S[j]
		}
		w.N += inout[i].N
		inout[i] = w
	}
}

func wordInput(r, count int) []word {
	out := make([]word, count)
	for i := range out {
		out[i] = word{N: 1, S: [15]byte{byte('a' + (r+i)%26)}}
	}
	return out
}

// serialPrefixes returns, for every rank r, in(0) ⊕ … ⊕ in(r) by f, combined one rank at a
// time.
func serialPrefixes[T any](n int, in func(r int) []T, f func(inout, in []T)) [][]T {
	out := make([][]T, n)
	out[0] = in(0)
	for r := 1; r < n; r++ {
		acc := in(r)
		f(acc, out[r-1])
		out[r] = acc
	}
	return out
}

// userOps runs ReduceFunc at every root, AllreduceFunc (also in place) and ScanFunc (also in
// place) with f on c, and checks each against the reference and that send is left alone.
func userOps[T comparable](c *comm.Comm, what string, in func(r int) []T, f func(inout, in []T)) error {
	me, n := c.Rank(), c.Size()
	want := serialPrefixes(n, in, f)
	send := in(me)
	count := len(send)
	for root := range n {
		var recv []T
		if me == root {
			recv = make([]T, count)
		}
		if err := comm.ReduceFunc(c, send, recv, f, root); err != nil {
			return fmt.Errorf("%s: reduce to %d: %w", what, root, err)
		}
		if me == root {
			if err := sameElems(recv, want[n-1], fmt.Sprintf("%s: reduce to %d", what, root)); err != nil {
				return err
			}
		}
	}
	got := make([]T, count)
	if err := comm.AllreduceFunc(c, send, got, f); err != nil {
		return fmt.Errorf("%s: allreduce: %w", what, err)
	}
	if err := sameElems(got, want[n-1], what+": allreduce"); err != nil {
		return err
	}
	clear(got)
	if err := comm.ScanFunc(c, send, got, f); err != nil {
		return fmt.Errorf("%s: scan: %w", what, err)
	}
	if err := sameElems(got, want[me], what+": scan"); err != nil {
		return err
	}
	if err := sameElems(send, in(me), what+": send after the calls"); err != nil {
		return err
	}
	inPlace := in(me)
	if err := comm.AllreduceFunc(c, inPlace, inPlace, f); err != nil {
		return fmt.Errorf("%s: allreduce in place: %w", what, err)
	}
	if err := sameElems(inPlace, want[n-1], what+": allreduce in place"); err != nil {
		return err
	}
	inPlace = in(me)
	if me == 0 {
		if err := comm.ReduceFunc(c, inPlace, inPlace, f, 0); err != nil {
			return fmt.Errorf("%s: reduce in place: %w", what, err)
		}
		if err := sameElems(inPlace, want[n-1], what+": reduce in place"); err != nil {
			return err
		}
	} else if err := comm.ReduceFunc(c, inPlace, nil, f, 0); err != nil {
		return fmt.Errorf("%s: reduce in place: %w", what, err)
	}
	inPlace = in(me)
	if err := comm.ScanFunc(c, inPlace, inPlace, f); err != nil {
		return fmt.Errorf("%s: scan in place: %w", what, err)
	}
	return sameElems(inPlace, want[me], what+": scan in place")
}

// locNumber is the value types the MaxLoc and MinLoc jobs run.
type locNumber interface{ ~int32 | ~float64 }

// locInput is rank r's input for MaxLoc and MinLoc: few distinct values, so that most
// elements tie across ranks, with the rank as the index.
func locInput[T locNumber](r, count int) []comm.ValIndex[T] {
	out := make([]comm.ValIndex[T], count)
	for i := range out {
		out[i] = comm.ValIndex[T]{Value: T((r*7 + i) % 3), Index: r}
	}
	return out
}

// locOps checks AllreduceFunc and ScanFunc with MaxLoc and MinLoc, and ReduceFunc to the
// last rank, against locRef.
func locOps[T locNumber](c *comm.Comm, count int) error {
	me, n := c.Rank(), c.Size()
	for _, op := range []struct {
		name string
		f    func(inout, in []comm.ValIndex[T])
		sign int
	}{{"maxloc", comm.MaxLoc[T], 1}, {"minloc", comm.MinLoc[T], -1}} {
		what := fmt.Sprintf("%s %T", op.name, *new(T))
		got := make([]comm.ValIndex[T], count)
		if err := comm.AllreduceFunc(c, locInput[T](me, count), got, op.f); err != nil {
			return fmt.Errorf("%s: allreduce: %w", what, err)
		}
		if err := sameElems(got, locRef[T](n-1, count, op.sign), what+": allreduce"); err != nil {
			return err
		}
		if err := comm.ScanFunc(c, locInput[T](me, count), got, op.f); err != nil {
			return fmt.Errorf("%s: scan: %w", what, err)
		}
		if err := sameElems(got, locRef[T](me, count, op.sign), what+": scan"); err != nil {
			return err
		}
		if err := comm.ReduceFunc(c, locInput[T](me, count), got, op.f, n-1); err != nil {
			return fmt.Errorf("%s: reduce: %w", what, err)
		}
		if me == n-1 {
			if err := sameElems(got, locRef[T](n-1, count, op.sign), what+": reduce"); err != nil {
				return err
			}
		}
	}
	return nil
}

// locRef is the reference for locInput over ranks 0…last, computed plainly: the extreme
// value over the ranks, and the first rank that holds it.
func locRef[T locNumber](last, count, sign int) []comm.ValIndex[T] {
	out := make([]comm.ValIndex[T], count)
	for i := range out {
		best, at := 0, -1
		for r := 0; r <= last; r++ {
			v := (r*7 + i) % 3
			if at < 0 || sign*(v-best) > 0 {
				best, at = v, r
			}
		}
		out[i] = comm.ValIndex[T]{Value: T(best), Index: at}
	}
	return out
}

// celsiusTemp is a named numeric type: MaxLoc works on its underlying float64.
type celsiusTemp float64

// userOpSteps is every user-reduction check at one count, on c.
func userOpSteps(count int) func(c *comm.Comm) error {
	return func(c *comm.Comm) error {
		return onCommunicators(c, func(c *comm.Comm) error {
			if err := userOps(c, fmt.Sprintf("mat2×%d", count), func(r int) []mat2 { return matInput(r, count, count) }, matMul); err != nil {
				return err
			}
			if count <= 7 {
				if err := userOps(c, fmt.Sprintf("word×%d", count), func(r int) []word { return wordInput(r, count) }, concatWords); err != nil {
					return err
				}
				if err := locOps[int32](c, count); err != nil {
					return err
				}
				if err := locOps[celsiusTemp](c, count); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// TestInProcessUserOps: every user-defined reduction, 1 to 9 ranks, every count, on the
// world, a duplicate and the halves of a split, for a world whose ranks are each a node of
// their own (the world would run commutative reductions hierarchically), and for one node
// without shared memory, delivered by push and by rendezvous.
func TestInProcessUserOps(t *testing.T) {
	shapes := []jobShape{jobShapes[0], jobShapes[2], jobShapes[3]}
	for _, count := range userOpCounts {
		t.Run(fmt.Sprintf("count%d", count), func(t *testing.T) {
			forJobs(t, shapes, userOpRanks, userOpSteps(count))
		})
	}
}

// TestInProcessUserOpErrors: a nil function is ErrOp, an element type with pointers ErrType,
// buffers that do not fit ErrBuffer, a root outside ErrRank, on every rank; a zero-size
// element type has nothing to combine; and the communicator works afterwards.
func TestInProcessUserOpErrors(t *testing.T) {
	type withPointer struct {
		X int
		P *int
	}
	forJobs(t, jobShapes[:1], []int{1, 2, 3}, func(c *comm.Comm) error {
		n := c.Size()
		pf := func(inout, in []withPointer) {}
		cases := []struct {
			name string
			err  error
			want error
		}{
			{"reduce nil f", comm.ReduceFunc[mat2](c, make([]mat2, 2), make([]mat2, 2), nil, 0), comm.ErrOp},
			{"allreduce nil f", comm.AllreduceFunc[mat2](c, make([]mat2, 2), make([]mat2, 2), nil), comm.ErrOp},
			{"scan nil f", comm.ScanFunc[mat2](c, make([]mat2, 2), make([]mat2, 2), nil), comm.ErrOp},
			{"reduce pointers", comm.ReduceFunc(c, make([]withPointer, 1), make([]withPointer, 1), pf, 0), comm.ErrType},
			{"allreduce pointers", comm.AllreduceFunc(c, make([]withPointer, 1), make([]withPointer, 1), pf), comm.ErrType},
			{"scan pointers", comm.ScanFunc(c, make([]withPointer, 1), make([]withPointer, 1), pf), comm.ErrType},
			{"allreduce lengths", comm.AllreduceFunc(c, make([]mat2, 2), make([]mat2, 3), matMul), comm.ErrBuffer},
			{"scan lengths", comm.ScanFunc(c, make([]mat2, 2), make([]mat2, 1), matMul), comm.ErrBuffer},
			{"reduce root", comm.ReduceFunc(c, make([]mat2, 2), make([]mat2, 2), matMul, n), comm.ErrRank},
		}
		for _, tc := range cases {
			if !errors.Is(tc.err, tc.want) {
				return fmt.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
			}
		}
		var te *comm.TypeError
		if err := comm.AllreduceFunc(c, make([]withPointer, 1), make([]withPointer, 1), pf); !errors.As(err, &te) || te.Kind != "pointer" {
			return fmt.Errorf("allreduce of a pointer type: %v, want a *TypeError naming the pointer", err)
		}
		called := false
		empty := make([]struct{}, 4)
		if err := comm.AllreduceFunc(c, empty, empty, func(inout, in []struct{}) { called = true }); err != nil || called {
			return fmt.Errorf("allreduce of a zero-size type: %v (f called: %v)", err, called)
		}
		return userOps(c, "after the errors", func(r int) []mat2 { return matInput(r, 3, 1) }, matMul)
	})
}

// TestMaxLocMinLoc: the ready user functions on their own, with in as the lower ranks'
// contribution: the extreme value wins, and of equal values the lower index, whichever side
// it is on; NaN orders below every number; complex numbers by real, then imaginary part.
func TestMaxLocMinLoc(t *testing.T) {
	type vi = comm.ValIndex[float64]
	nan := math.NaN()
	cases := []struct {
		name     string
		in, io   vi
		max, min vi
	}{
		{"larger in", vi{3, 0}, vi{2, 1}, vi{3, 0}, vi{2, 1}},
		{"larger inout", vi{2, 0}, vi{3, 1}, vi{3, 1}, vi{2, 0}},
		{"tie, lower index in", vi{5, 1}, vi{5, 4}, vi{5, 1}, vi{5, 1}},
		{"tie, lower index inout", vi{5, 4}, vi{5, 1}, vi{5, 1}, vi{5, 1}},
		{"negative zero ties", vi{math.Copysign(0, -1), 2}, vi{0, 1}, vi{0, 1}, vi{0, 1}},
		{"nan below numbers", vi{nan, 0}, vi{-1, 1}, vi{-1, 1}, vi{nan, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []struct {
				name string
				f    func(inout, in []vi)
				want vi
			}{{"max", comm.MaxLoc[float64], tc.max}, {"min", comm.MinLoc[float64], tc.min}} {
				inout := []vi{tc.io}
				f.f(inout, []vi{tc.in})
				got := inout[0]
				same := got.Index == f.want.Index && (got.Value == f.want.Value || math.IsNaN(got.Value) && math.IsNaN(f.want.Value))
				if !same || math.Signbit(got.Value) != math.Signbit(f.want.Value) {
					t.Errorf("%s(inout %v, in %v) = %v, want %v", f.name, tc.io, tc.in, got, f.want)
				}
			}
		})
	}
	z := []comm.ValIndex[complex128]{{complex(1, 5), 3}, {complex(2, 0), 3}, {complex(1, 1), 3}}
	zin := []comm.ValIndex[complex128]{{complex(1, 2), 7}, {complex(1, 9), 7}, {complex(1, 1), 0}}
	comm.MaxLoc(z, zin)
	if want := []comm.ValIndex[complex128]{{complex(1, 5), 3}, {complex(2, 0), 3}, {complex(1, 1), 0}}; !slices.Equal(z, want) {
		t.Errorf("complex MaxLoc: %v, want %v", z, want)
	}
	u := []comm.ValIndex[uint8]{{200, 9}, {7, 2}}
	comm.MinLoc(u, []comm.ValIndex[uint8]{{255, 1}, {7, 3}})
	if want := []comm.ValIndex[uint8]{{200, 9}, {7, 2}}; !slices.Equal(u, want) {
		t.Errorf("uint8 MinLoc: %v, want %v", u, want)
	}
	c := []comm.ValIndex[celsiusTemp]{{-3, 4}}
	comm.MaxLoc(c, []comm.ValIndex[celsiusTemp]{{-2.5, 5}})
	if want := (comm.ValIndex[celsiusTemp]{-2.5, 5}); c[0] != want {
		t.Errorf("named-type MaxLoc: %v, want %v", c[0], want)
	}
}
