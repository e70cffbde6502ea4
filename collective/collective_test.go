package collective

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/gorun-hpc/gorun/internal/view"
)

func TestBarrierAndBcastEverySize(t *testing.T) {
	for n := 1; n <= 9; n++ {
		for root := 0; root < n; root++ {
			t.Run(fmt.Sprintf("n%d/root%d", n, root), func(t *testing.T) {
				runRanks(t, n, func(c Comm) error {
					if err := barrier(c); err != nil {
						return err
					}
					buf := make([]byte, 1000)
					if c.Rank() == root {
						for i := range buf {
							buf[i] = byte(i + root)
						}
					}
					if err := bcastBinomial(c, buf, root); err != nil {
						return err
					}
					for i := range buf {
						if buf[i] != byte(i+root) {
							return fmt.Errorf("rank %d: byte %d = %d", c.Rank(), i, buf[i])
						}
					}
					return nil
				})
			})
		}
	}
}

func TestAllreduceRecursiveDoubling(t *testing.T) {
	for n := 1; n <= 9; n++ {
		for _, count := range []int{0, 1, 7, 1000} {
			t.Run(fmt.Sprintf("n%d/count%d", n, count), func(t *testing.T) {
				results := make([][]float64, n)
				runRanks(t, n, func(c Comm) error {
					send := make([]float64, count)
					for i := range send {
						send[i] = 1.0/float64(c.Rank()+1) + float64(i)*1e-3
					}
					recv := make([]float64, count)
					r, err := NewReducer(Sum, kindFloat64, 8)
					if err != nil {
						return err
					}
					if err := allreduceRecursiveDoubling(c, view.Bytes(send), view.Bytes(recv), r); err != nil {
						return err
					}
					results[c.Rank()] = recv
					return nil
				})
				for i := 0; i < count; i++ {
					want := 0.0
					for r := 0; r < n; r++ {
						want += 1.0/float64(r+1) + float64(i)*1e-3
					}
					if math.Abs(results[0][i]-want) > 1e-9 {
						t.Fatalf("element %d = %v, want %v", i, results[0][i], want)
					}
				}
				for r := 1; r < n; r++ {
					if !bytes.Equal(view.Bytes(results[r]), view.Bytes(results[0])) {
						t.Fatalf("rank %d's result differs in its bits from rank 0's", r)
					}
				}
			})
		}
	}
}

func TestAllreduceNonCommutativeFuncSeesRankOrder(t *testing.T) {
	// String concatenation of one digit per rank, encoded as an int64 in base 16: the result
	// must list the ranks in order whatever the algorithm, and be the same bits everywhere.
	algos := map[string]func(Comm, []byte, []byte, Reducer) error{
		"recursive_doubling": allreduceRecursiveDoubling,
		"rabenseifner":       allreduceRabenseifner,
		"ring":               allreduceRing,
	}
	for name, allreduce := range algos {
		for n := 1; n <= 9; n++ {
			for _, count := range []int{1, 3, 20} {
				runRanks(t, n, func(c Comm) error {
					type acc struct{ digits, count int64 }
					in := make([]acc, count)
					for i := range in {
						in[i] = acc{int64((c.Rank() + i) % 16), 1}
					}
					out := make([]acc, count)
					r := Reducer{Size: 16, Func: func(inout, other []byte) {
						a, b := view.As[acc](inout), view.As[acc](other)
						for i := range a {
							a[i].digits = a[i].digits<<(4*b[i].count) | b[i].digits
							a[i].count += b[i].count
						}
					}}
					if err := allreduce(c, view.Bytes(in), view.Bytes(out), r); err != nil {
						return err
					}
					for i := range out {
						want := int64(0)
						for r := 0; r < n; r++ {
							want = want<<4 | int64((r+i)%16)
						}
						if out[i].digits != want {
							return fmt.Errorf("%s, rank %d, element %d: got %x, want %x", name, c.Rank(), i, out[i].digits, want)
						}
					}
					return nil
				})
			}
		}
	}
}

func TestAllgatherRing(t *testing.T) {
	for n := 1; n <= 9; n++ {
		runRanks(t, n, func(c Comm) error {
			send := []byte{byte(c.Rank()), byte(c.Rank() * 2), 7}
			recv := make([]byte, 3*n)
			if err := AllgatherRing(c, send, recv); err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				if !bytes.Equal(recv[3*i:3*i+3], []byte{byte(i), byte(i * 2), 7}) {
					return fmt.Errorf("rank %d: block %d = %v", c.Rank(), i, recv[3*i:3*i+3])
				}
			}
			return nil
		})
	}
}

func TestOpChecks(t *testing.T) {
	cases := []struct {
		op   Op
		kind Kind
		ok   bool
	}{
		{Sum, kindFloat64, true}, {Band, kindFloat64, false}, {Band, kindInt32, true}, {Min, kindComplex128, false},
		{Prod, kindComplex64, true}, {Lor, kindUint8, true}, {Sum, kindInvalid, false}, {opInvalid, kindInt32, false},
	}
	for _, tc := range cases {
		err := checkOp(tc.op, tc.kind)
		if (err == nil) != tc.ok {
			t.Errorf("checkOp(%v, %v) = %v", tc.op, tc.kind, err)
		}
	}
}

// Scratch from alloc is zeroed and of the length asked for, whether it is fresh or was given
// back dirty by an earlier call.
func TestScratchIsZeroedOnReuse(t *testing.T) {
	release(nil)
	for _, n := range []int{100, 50, 100, 3000, 7, 0} {
		b := alloc(n)
		if len(b) != n {
			t.Fatalf("alloc(%d) gave %d bytes", n, len(b))
		}
		for i, v := range b {
			if v != 0 {
				t.Fatalf("alloc(%d): byte %d is %d", n, i, v)
			}
		}
		for i := range b {
			b[i] = 0xff
		}
		release(b)
	}
}
