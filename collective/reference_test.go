package collective

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"unsafe"

	"github.com/gorun-hpc/gorun/internal/view"
)

// The naive reference: every rank hands its input and output of a step to one place; once all
// have, that place computes the expected outputs from all the inputs, the obvious way (a left
// fold in rank order, plain copies), and compares every rank's output byte for byte.

// step is one collective call that every rank of a world makes.
type step struct {
	name string
	// run makes the call on one rank and returns that rank's input and output buffers (fresh
	// ones: they are handed over).
	run func(c Comm) (in, out []byte, err error)
	// check compares the outputs of all ranks with what their inputs call for.
	check func(ins, outs [][]byte) error
}

// collector gathers each step's inputs and outputs from every rank and checks the step when
// the last rank has handed in; ranks run ahead freely, so several steps may be pending.
type collector struct {
	n       int
	mu      sync.Mutex
	pending map[int]*handIn
	errs    []error
}

type handIn struct {
	ins, outs [][]byte
	got       int
}

func (col *collector) hand(i int, s step, rank int, in, out []byte) {
	col.mu.Lock()
	h := col.pending[i]
	if h == nil {
		h = &handIn{ins: make([][]byte, col.n), outs: make([][]byte, col.n)}
		col.pending[i] = h
	}
	h.ins[rank], h.outs[rank] = in, out
	h.got++
	last := h.got == col.n
	if last {
		delete(col.pending, i)
	}
	col.mu.Unlock()
	if !last {
		return
	}
	if err := s.check(h.ins, h.outs); err != nil {
		col.mu.Lock()
		col.errs = append(col.errs, fmt.Errorf("%s: %w", s.name, err))
		col.mu.Unlock()
	}
}

// runSteps runs steps in order on every rank of an n-rank memWorld and checks each against
// the reference. It stops a rank at its first error; it reports at most a few mismatches.
func runSteps(t *testing.T, n int, steps []step) {
	t.Helper()
	runStepsOn(t, n, nil, steps)
}

// runStepsOn is runSteps where each rank's communicator is first passed through wrap (nil:
// used as it is), e.g. to make it node-aware.
func runStepsOn(t *testing.T, n int, wrap func(Comm) Comm, steps []step) {
	t.Helper()
	col := &collector{n: n, pending: map[int]*handIn{}}
	runRanks(t, n, func(c Comm) error {
		if wrap != nil {
			c = wrap(c)
		}
		for i, s := range steps {
			in, out, err := s.run(c)
			if err != nil {
				return fmt.Errorf("%s: rank %d: %w", s.name, c.Rank(), err)
			}
			col.hand(i, s, c.Rank(), in, out)
		}
		return nil
	})
	if len(col.errs) > 0 {
		t.Fatal(errors.Join(col.errs[:min(len(col.errs), 5)]...))
	}
}

// elemCase is an element type: how to make a rank's input and how to combine two values for
// the reference. Inputs are chosen so that every op gives exact results in any association
// (small integers; floats that are sums and products of a few binary fractions), so the
// reference is compared bit for bit.
type elemCase struct {
	name string
	kind Kind
	size int
	ops  []Op
	fill func(b []byte, rank, seed int)
	ref  func(op Op, acc, in []byte) // acc = acc ⊕ in, elementwise
	// reducer returns the Reducer under test for op (nil: the predefined op on kind).
	reducer func(op Op) (Reducer, error)
}

func (ec elemCase) newReducer(op Op) (Reducer, error) {
	if ec.reducer != nil {
		return ec.reducer(op)
	}
	return NewReducer(op, ec.kind, ec.size)
}

// concatElem is a non-commutative operation: each element is a string of hex digits, one per
// rank, and ⊕ concatenates; a result lists the ranks' digits in rank order only if every
// combination kept rank order.
var concatElem = elemCase{
	name: "concat", size: 16, ops: []Op{opInvalid},
	fill: func(b []byte, rank, seed int) {
		for i, s := 0, view.As[digits](b); i < len(s); i++ {
			s[i] = digits{d: int64((rank*3 + i + seed) % 16), n: 1}
		}
	},
	ref: func(_ Op, acc, in []byte) { concatDigits(view.As[digits](acc), view.As[digits](in)) },
	reducer: func(Op) (Reducer, error) {
		return Reducer{Size: 16, Func: func(inout, in []byte) {
			concatDigits(view.As[digits](inout), view.As[digits](in))
		}}, nil
	},
}

type digits struct{ d, n int64 }

func concatDigits(a, b []digits) {
	for i := range a {
		a[i].d = a[i].d<<(4*b[i].n) | b[i].d
		a[i].n += b[i].n
	}
}

var (
	intOps   = []Op{Sum, Prod, Min, Max, Band, Bor, Bxor, Land, Lor}
	floatOps = []Op{Sum, Prod, Min, Max}
)

func intElem[T integer](name string) elemCase {
	var zero T
	return elemCase{
		name: name, kind: KindOf[T](), size: int(unsafe.Sizeof(zero)), ops: intOps,
		fill: func(b []byte, rank, seed int) {
			for i, s := 0, view.As[T](b); i < len(s); i++ {
				s[i] = T((rank*31+i*7+seed)%13 - 6)
			}
		},
		ref: func(op Op, acc, in []byte) {
			a, x := view.As[T](acc), view.As[T](in)
			for i := range a {
				a[i] = refInt(op, a[i], x[i])
			}
		},
	}
}

var floatValues = [...]float64{0.5, -1, 2, -0.25, 4, 1.5, -3, 0.75, 1}

func floatElem[T float](name string) elemCase {
	var zero T
	return elemCase{
		name: name, kind: KindOf[T](), size: int(unsafe.Sizeof(zero)), ops: floatOps,
		fill: func(b []byte, rank, seed int) {
			for i, s := 0, view.As[T](b); i < len(s); i++ {
				s[i] = T(floatValues[(rank*5+i*3+seed)%len(floatValues)])
			}
		},
		ref: func(op Op, acc, in []byte) {
			a, x := view.As[T](acc), view.As[T](in)
			for i := range a {
				a[i] = refArith(op, a[i], x[i])
			}
		},
	}
}

func refArith[T integer | float](op Op, a, b T) T {
	switch op {
	case Sum:
		return a + b
	case Prod:
		return a * b
	case Min:
		if b < a {
			return b
		}
		return a
	case Max:
		if b > a {
			return b
		}
		return a
	}
	panic(fmt.Sprint("reference: op ", op))
}

func refInt[T integer](op Op, a, b T) T {
	truth := func(v bool) T {
		if v {
			return 1
		}
		return 0
	}
	switch op {
	case Band:
		return a & b
	case Bor:
		return a | b
	case Bxor:
		return a ^ b
	case Land:
		return truth(a != 0 && b != 0)
	case Lor:
		return truth(a != 0 || b != 0)
	}
	return refArith(op, a, b)
}

var elemCases = []elemCase{intElem[int32]("int32"), intElem[int64]("int64"), floatElem[float32]("float32"), floatElem[float64]("float64")}

// refReduce folds the inputs of ranks [lo, hi) in rank order: ((x_lo ⊕ x_lo+1) ⊕ …).
func refReduce(ec elemCase, op Op, ins [][]byte, lo, hi int, part func([]byte) []byte) []byte {
	acc := append([]byte(nil), part(ins[lo])...)
	for r := lo + 1; r < hi; r++ {
		ec.ref(op, acc, part(ins[r]))
	}
	return acc
}

func whole(b []byte) []byte { return b }

// input returns rank's input of count elements for a step (fresh, aligned).
func input(ec elemCase, count, rank, seed int) []byte {
	b := alloc(count * ec.size)
	ec.fill(b, rank, seed)
	return b
}

// garbage returns a buffer of n bytes that no correct result matches.
func garbage(n int) []byte {
	b := alloc(n)
	for i := range b {
		b[i] = 0xEE
	}
	return b
}

func sameBytes(got, want []byte, rank int) error {
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("rank %d: %d bytes differ from the reference's %d, first at byte %d", rank, len(got), len(want), i)
}
