package collective

import (
	"errors"
	"fmt"

	"github.com/gorun-hpc/gorun/internal/view"
)

// Op is a predefined reduction operation.
type Op uint8

const (
	opInvalid Op = iota
	Sum
	Prod
	Min
	Max
	Band // bitwise and
	Bor  // bitwise or
	Bxor // bitwise exclusive or
	Land // logical and: non-zero is true, the result is 1 or 0
	Lor  // logical or
)

var opNames = [...]string{"invalid", "sum", "prod", "min", "max", "band", "bor", "bxor", "land", "lor"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ErrOp reports an operation that is not defined on the element type (a bitwise op on floats,
// min on complex numbers) or is not an operation at all.
var ErrOp = errors.New("operation not defined on this element type")

// checkOp reports whether op is defined on kind.
func checkOp(op Op, kind Kind) error {
	ok := false
	switch {
	case kind == kindInvalid:
	case op == Sum || op == Prod:
		ok = true
	case op == Min || op == Max:
		ok = !kind.isComplex()
	case op >= Band && op <= Lor:
		ok = kind.isInteger()
	}
	if !ok {
		return fmt.Errorf("%w: %v on %v", ErrOp, op, kind)
	}
	return nil
}

// Reducer combines two buffers of elements: inout = inout ⊕ in, elementwise, where inout holds
// the contribution of lower ranks. It is either a predefined Op on a Kind, or a user function
// over bytes (Func). Pass it by value; the zero Reducer is invalid.
type Reducer struct {
	Op   Op
	Kind Kind
	// Func, if set, is used instead of Op: a user-defined associative operation. It receives
	// whole elements only.
	Func func(inout, in []byte)
	// Size is the element size in bytes.
	Size int
	// Commutative: the operands may be combined in any order. Predefined ops are.
	Commutative bool
}

// NewReducer returns the Reducer for a predefined op on kind with elements of size bytes.
func NewReducer(op Op, kind Kind, size int) (Reducer, error) {
	if err := checkOp(op, kind); err != nil {
		return Reducer{}, err
	}
	return Reducer{Op: op, Kind: kind, Size: size, Commutative: true}, nil
}

// check reports a Reducer that cannot run: no element size, or a predefined op that is not
// defined on its kind or whose kind does not have the element size.
func (r Reducer) check() error {
	if r.Size <= 0 {
		return fmt.Errorf("%w: reducer with element size %d", ErrOp, r.Size)
	}
	if r.Func != nil {
		return nil
	}
	if err := checkOp(r.Op, r.Kind); err != nil {
		return err
	}
	if r.Kind.size() != r.Size {
		return fmt.Errorf("%w: %v elements of %d bytes", ErrOp, r.Kind, r.Size)
	}
	return nil
}

// checkReduce validates a reduction's reducer and its buffers: send and recv of the same
// length, a whole number of elements.
func checkReduce(send, recv []byte, r Reducer) error {
	if err := r.check(); err != nil {
		return err
	}
	if len(send) != len(recv) || len(send)%r.Size != 0 {
		return bufErr("%d bytes into %d, elements of %d bytes", len(send), len(recv), r.Size)
	}
	return nil
}

// apply computes inout = inout ⊕ in. len(in) must be at least len(inout).
func (r Reducer) apply(inout, in []byte) {
	if len(inout) == 0 {
		return
	}
	in = in[:len(inout)]
	if r.Func != nil {
		r.Func(inout, in)
		return
	}
	switch r.Kind {
	case kindInt8:
		applyInt(r.Op, view.As[int8](inout), view.As[int8](in))
	case kindInt16:
		applyInt(r.Op, view.As[int16](inout), view.As[int16](in))
	case kindInt32:
		applyInt(r.Op, view.As[int32](inout), view.As[int32](in))
	case kindInt64:
		applyInt(r.Op, view.As[int64](inout), view.As[int64](in))
	case kindInt:
		applyInt(r.Op, view.As[int](inout), view.As[int](in))
	case kindUint8:
		applyInt(r.Op, view.As[uint8](inout), view.As[uint8](in))
	case kindUint16:
		applyInt(r.Op, view.As[uint16](inout), view.As[uint16](in))
	case kindUint32:
		applyInt(r.Op, view.As[uint32](inout), view.As[uint32](in))
	case kindUint64:
		applyInt(r.Op, view.As[uint64](inout), view.As[uint64](in))
	case kindUint:
		applyInt(r.Op, view.As[uint](inout), view.As[uint](in))
	case kindUintptr:
		applyInt(r.Op, view.As[uintptr](inout), view.As[uintptr](in))
	case kindFloat32:
		applyFloat(r.Op, view.As[float32](inout), view.As[float32](in))
	case kindFloat64:
		applyFloat(r.Op, view.As[float64](inout), view.As[float64](in))
	case kindComplex64:
		applyComplex(r.Op, view.As[complex64](inout), view.As[complex64](in))
	case kindComplex128:
		applyComplex(r.Op, view.As[complex128](inout), view.As[complex128](in))
	}
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint | ~uintptr
}

type float interface{ ~float32 | ~float64 }

type complexNum interface{ ~complex64 | ~complex128 }

// The kernels are plain loops over equal-length slices (the re-slice lets the compiler drop
// bounds checks); memory bandwidth, not arithmetic, bounds them.

func sum[T integer | float | complexNum](a, b []T) {
	b = b[:len(a)]
	for i := range a {
		a[i] += b[i]
	}
}

func prod[T integer | float | complexNum](a, b []T) {
	b = b[:len(a)]
	for i := range a {
		a[i] *= b[i]
	}
}

// lowest and highest use Go's min and max, which are commutative to the bit (a NaN wins,
// and -0 is below +0), so every rank computes the same result whatever the operand order.
func lowest[T integer | float](a, b []T) {
	b = b[:len(a)]
	for i := range a {
		a[i] = min(a[i], b[i])
	}
}

func highest[T integer | float](a, b []T) {
	b = b[:len(a)]
	for i := range a {
		a[i] = max(a[i], b[i])
	}
}

func applyInt[T integer](op Op, a, b []T) {
	b = b[:len(a)]
	switch op {
	case Sum:
		sum(a, b)
	case Prod:
		prod(a, b)
	case Min:
		lowest(a, b)
	case Max:
		highest(a, b)
	case Band:
		for i := range a {
			a[i] &= b[i]
		}
	case Bor:
		for i := range a {
			a[i] |= b[i]
		}
	case Bxor:
		for i := range a {
			a[i] ^= b[i]
		}
	case Land:
		for i := range a {
			a[i] = truth[T](a[i] != 0 && b[i] != 0)
		}
	case Lor:
		for i := range a {
			a[i] = truth[T](a[i] != 0 || b[i] != 0)
		}
	}
}

func truth[T integer](v bool) T {
	if v {
		return 1
	}
	return 0
}

func applyFloat[T float](op Op, a, b []T) {
	switch op {
	case Sum:
		sum(a, b)
	case Prod:
		prod(a, b)
	case Min:
		lowest(a, b)
	case Max:
		highest(a, b)
	}
}

func applyComplex[T complexNum](op Op, a, b []T) {
	switch op {
	case Sum:
		sum(a, b)
	case Prod:
		prod(a, b)
	}
}
