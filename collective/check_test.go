package collective

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// TestVerifyCatchesMismatches: ranks that disagree on the count, the root, the op, the
// element size or the operation all get ErrMismatch, on every rank, without a hang; a rank
// whose own arguments failed gets its own error and the others ErrMismatch.
func TestVerifyCatchesMismatches(t *testing.T) {
	base := Signature{Coll: CollAllreduce, Count: 10, Root: 0, Op: Sum, Elem: 8}
	errLocal := errors.New("local buffer check failed")
	cases := []struct {
		name  string
		edit  func(s *Signature, rank int) error // changes rank's signature; returns its local error
		wants string
	}{
		{"count", func(s *Signature, r int) error { s.Count += r % 2; return nil }, "count from 10 to 11"},
		{"root", func(s *Signature, r int) error {
			if r == 1 {
				s.Root = 1
			}
			return nil
		}, "root from 0 to 1"},
		{"op", func(s *Signature, r int) error {
			if r == 0 {
				s.Op = Max
			}
			return nil
		}, "op"},
		{"elem", func(s *Signature, r int) error { s.Elem = 4 + 4*(r%2); return nil }, "element size"},
		{"operation", func(s *Signature, r int) error {
			if r == 1 {
				s.Coll = CollBcast
			}
			return nil
		}, "another operation"},
		{"local", func(s *Signature, r int) error {
			if r == 1 {
				return errLocal
			}
			return nil
		}, "another rank's arguments"},
	}
	for _, tc := range cases {
		for _, n := range []int{2, 3, 5, 8} {
			t.Run(fmt.Sprintf("%s/n%d", tc.name, n), func(t *testing.T) {
				errs := runWorld(t, n, func(c Comm) error {
					s := base
					local := tc.edit(&s, c.Rank())
					err := Verify(c, s, local)
					if local != nil && err != local {
						return fmt.Errorf("rank %d got %v, want its own error", c.Rank(), err)
					}
					return err
				})
				for r, err := range errs {
					if tc.name == "local" && r == 1 {
						if !errors.Is(err, errLocal) {
							t.Errorf("rank 1: %v", err)
						}
						continue
					}
					if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.wants) {
						t.Errorf("rank %d: %v, want ErrMismatch with %q", r, err, tc.wants)
					}
				}
			})
		}
	}
}

func TestVerifyAgreement(t *testing.T) {
	for n := 1; n <= 9; n++ {
		runRanks(t, n, func(c Comm) error {
			for root := range n {
				if err := Verify(c, Signature{Coll: CollGather, Count: 1000, Root: root, Elem: 4}, nil); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// TestBarrierSynchronizes: no rank leaves a barrier before every rank has entered it.
func TestBarrierSynchronizes(t *testing.T) {
	for n := 1; n <= 9; n++ {
		var entered [5]atomic.Int32
		runRanks(t, n, func(c Comm) error {
			for round := range entered {
				entered[round].Add(1)
				if err := barrier(c); err != nil {
					return err
				}
				if got := entered[round].Load(); got != int32(n) {
					return fmt.Errorf("rank %d left barrier %d when %d of %d had entered", c.Rank(), round, got, n)
				}
			}
			return nil
		})
	}
}

// TestBadArgumentsAreErrors: buffers that do not fit, roots out of range and reducers that
// cannot run are errors on every rank before anything is sent (so no rank hangs), never
// panics.
func TestBadArgumentsAreErrors(t *testing.T) {
	f64, err := NewReducer(Sum, kindFloat64, 8)
	if err != nil {
		t.Fatal(err)
	}
	b8, b16, b24 := make([]byte, 8), make([]byte, 16), make([]byte, 24)
	calls := []struct {
		name string
		call func(c Comm) error
		want error
		n    int // ranks: 3, or 1 where only the root can see the problem
	}{
		{"allreduce lengths", func(c Comm) error { return allreduceRing(c, b8, b16, f64) }, errBuffer, 0},
		{"allreduce partial element", func(c Comm) error { return allreduceRabenseifner(c, b8[:5], b16[:5], f64) }, errBuffer, 0},
		{"zero reducer", func(c Comm) error { return allreduceRecursiveDoubling(c, b8, b8, Reducer{}) }, ErrOp, 0},
		{"band on floats", func(c Comm) error {
			return allreduceRing(c, b8, b8, Reducer{Op: Band, Kind: kindFloat64, Size: 8, Commutative: true})
		}, ErrOp, 0},
		{"kind size", func(c Comm) error {
			return scanRecursiveDoubling(c, b8, b8, Reducer{Op: Sum, Kind: kindInt32, Size: 8})
		}, ErrOp, 0},
		{"allgather", func(c Comm) error { return allgatherBruck(c, b8, b8) }, errBuffer, 0},
		{"alltoall", func(c Comm) error { return alltoallBruck(c, b16, b24) }, errBuffer, 0},
		{"gather root buffer", func(c Comm) error { return gatherBinomial(c, b8, b16, 0) }, errBuffer, 1},
		{"scatter root buffer", func(c Comm) error { return scatterLinear(c, b16, b8, 0) }, errBuffer, 1},
		{"reduce-scatter", func(c Comm) error { return reduceScatterBlockPairwise(c, b16, b16, f64) }, errBuffer, 0},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n
			if n == 0 {
				n = 3
			}
			for r, err := range runWorld(t, n, tc.call) {
				if !errors.Is(err, tc.want) {
					t.Errorf("rank %d: %v, want %v", r, err, tc.want)
				}
			}
		})
	}
	for _, root := range []int{-1, 3} {
		for r, err := range runWorld(t, 3, func(c Comm) error { return bcastScatterAllgather(c, b8, root) }) {
			if err == nil || !strings.Contains(err.Error(), "root") {
				t.Errorf("root %d, rank %d: %v", root, r, err)
			}
		}
	}
}
