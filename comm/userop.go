package comm

import (
	"cmp"
	"fmt"
	"reflect"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/internal/view"
)

// Reductions with user-defined operations, as MPI_Op_create makes them.
//
// The operation is f(inout, in): it sets inout[i] = in[i] ⊕ inout[i] for every i, where in
// holds the contribution of lower ranks and inout that of higher ones (MPI's user function,
// with invec from the lower ranks). ⊕ must be associative; it need not be commutative: the
// result at rank order is x0 ⊕ x1 ⊕ … ⊕ x(n-1), whichever algorithm runs, and every rank
// of an AllreduceFunc gets the same bits. f gets whole elements, in and inout of the same
// length and never overlapping, and must leave in as it found it (it may be another
// rank's data in the node's shared memory). f runs on the calling goroutine only, between
// the call's start and its return, and not at all in a communicator of one rank.
//
// The element type may be any pointer-free type (see Elem, ErrType): a struct of numbers,
// an array. A type with pointers is refused with ErrType on every rank, before anything is
// sent. Each combination costs two copies of the higher operand on top of f itself (the
// algorithms keep their results in the lower operand, f in the higher one).

// userReducer returns the Reducer that runs f. collective combines as Func(lower, higher),
// leaving lower ⊕ higher in lower; f leaves in ⊕ inout in inout. So each combination copies
// higher into spare, runs f(spare, lower) and copies spare back into lower: higher is never
// written (it may be shared memory another rank reads). spare grows to the largest operand
// and is reused: the algorithms of one call combine on one goroutine, one pair at a time.
func userReducer[T any](f func(inout, in []T)) collective.Reducer {
	var spare []T
	return collective.Reducer{Size: sizeOf[T](), Func: func(lower, higher []byte) {
		lo, hi := view.As[T](lower), view.As[T](higher)
		if cap(spare) < len(hi) {
			spare = make([]T, len(hi))
		}
		s := spare[:len(hi)]
		copy(s, hi)
		f(s, lo)
		copy(lo, s)
	}}
}

// userOpErr is the local verdict on a user-defined reduction's function and element type.
func userOpErr[T any](name string, f func(inout, in []T)) error {
	if err := checkType[T](); err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("%w: %s without a function", ErrOp, name)
	}
	return nil
}

// ReduceFunc is Reduce with a user-defined associative operation f (see above): it leaves
// x0 ⊕ x1 ⊕ … ⊕ x(n-1) in recv at root, where xi is rank i's send. At the root recv has
// the length of send (it may be the same slice); elsewhere it is not used.
func ReduceFunc[T any](c *Comm, send, recv []T, f func(inout, in []T), root int) error {
	var berr error
	if c.rank == root && len(recv) != len(send) {
		berr = fmt.Errorf("%w: ReduceFunc of %d elements into %d at the root", ErrBuffer, len(send), len(recv))
	}
	local := firstErr(userOpErr("ReduceFunc", f), c.rootErr(root), berr)
	e, err := c.begin(sig[T](collective.CollReduce, len(send), root, 0), local)
	if err != nil {
		return err
	}
	defer c.end()
	if sizeOf[T]() == 0 { // nothing to combine: every value of the type is the same
		return nil
	}
	return e.Reduce(c.coll(), bytesOf(send), bytesOf(recv), userReducer(f), root)
}

// AllreduceFunc is Allreduce with a user-defined associative operation f (see above): every
// rank gets x0 ⊕ x1 ⊕ … ⊕ x(n-1) in recv, the same bits everywhere. send and recv have the
// same length and may be the same slice.
func AllreduceFunc[T any](c *Comm, send, recv []T, f func(inout, in []T)) error {
	var berr error
	if len(send) != len(recv) {
		berr = fmt.Errorf("%w: AllreduceFunc of %d elements into %d", ErrBuffer, len(send), len(recv))
	}
	e, err := c.begin(sig[T](collective.CollAllreduce, len(send), 0, 0), firstErr(userOpErr("AllreduceFunc", f), berr))
	if err != nil {
		return err
	}
	defer c.end()
	if sizeOf[T]() == 0 {
		return nil
	}
	return e.Allreduce(c.coll(), bytesOf(send), bytesOf(recv), userReducer(f))
}

// ScanFunc is Scan with a user-defined associative operation f (see above): rank i gets
// x0 ⊕ x1 ⊕ … ⊕ xi in recv (an inclusive prefix). send and recv have the same length and
// may be the same slice.
func ScanFunc[T any](c *Comm, send, recv []T, f func(inout, in []T)) error {
	var berr error
	if len(send) != len(recv) {
		berr = fmt.Errorf("%w: ScanFunc of %d elements into %d", ErrBuffer, len(send), len(recv))
	}
	e, err := c.begin(sig[T](collective.CollScan, len(send), 0, 0), firstErr(userOpErr("ScanFunc", f), berr))
	if err != nil {
		return err
	}
	defer c.end()
	if sizeOf[T]() == 0 {
		return nil
	}
	return e.Scan(c.coll(), bytesOf(send), bytesOf(recv), userReducer(f))
}

// ValIndex is a value with an index (a rank, a position: the caller's choice), the element
// of MaxLoc and MinLoc, like MPI's MPI_DOUBLE_INT and the other pair types.
type ValIndex[T Number] struct {
	Value T
	Index int
}

// MaxLoc is MPI_MAXLOC as a user function for ReduceFunc, AllreduceFunc and ScanFunc: it
// keeps the larger Value with its Index, and of equal Values the lower Index. Floating-point
// values are ordered as cmp.Compare orders them (a NaN below every number, -0 equal to +0);
// complex ones, which MPI does not order, by real part, then imaginary part. The order is
// total, so MaxLoc is associative and commutative.
func MaxLoc[T Number](inout, in []ValIndex[T]) { pickLoc(inout, in, 1) }

// MinLoc is MPI_MINLOC as a user function: the smaller Value with its Index, and of equal
// Values the lower Index. Values are ordered as for MaxLoc.
func MinLoc[T Number](inout, in []ValIndex[T]) { pickLoc(inout, in, -1) }

// pickLoc runs MaxLoc (sign 1) or MinLoc (sign -1) on T's underlying type: the same layout,
// so the pairs are viewed as pairs of it.
func pickLoc[T Number](inout, in []ValIndex[T], sign int) {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Int8:
		pickOrdered(asPairs[int8](inout), asPairs[int8](in), sign)
	case reflect.Int16:
		pickOrdered(asPairs[int16](inout), asPairs[int16](in), sign)
	case reflect.Int32:
		pickOrdered(asPairs[int32](inout), asPairs[int32](in), sign)
	case reflect.Int64:
		pickOrdered(asPairs[int64](inout), asPairs[int64](in), sign)
	case reflect.Int:
		pickOrdered(asPairs[int](inout), asPairs[int](in), sign)
	case reflect.Uint8:
		pickOrdered(asPairs[uint8](inout), asPairs[uint8](in), sign)
	case reflect.Uint16:
		pickOrdered(asPairs[uint16](inout), asPairs[uint16](in), sign)
	case reflect.Uint32:
		pickOrdered(asPairs[uint32](inout), asPairs[uint32](in), sign)
	case reflect.Uint64:
		pickOrdered(asPairs[uint64](inout), asPairs[uint64](in), sign)
	case reflect.Uint:
		pickOrdered(asPairs[uint](inout), asPairs[uint](in), sign)
	case reflect.Float32:
		pickOrdered(asPairs[float32](inout), asPairs[float32](in), sign)
	case reflect.Float64:
		pickOrdered(asPairs[float64](inout), asPairs[float64](in), sign)
	case reflect.Complex64:
		pick(asPairs[complex64](inout), asPairs[complex64](in), sign, func(a, b complex64) int {
			return cmp.Or(cmp.Compare(real(a), real(b)), cmp.Compare(imag(a), imag(b)))
		})
	case reflect.Complex128:
		pick(asPairs[complex128](inout), asPairs[complex128](in), sign, func(a, b complex128) int {
			return cmp.Or(cmp.Compare(real(a), real(b)), cmp.Compare(imag(a), imag(b)))
		})
	}
}

// asPairs views pairs of a named type (type Celsius float64) as pairs of its underlying U.
func asPairs[U, T Number](s []ValIndex[T]) []ValIndex[U] { return view.Retype[ValIndex[U]](s) }

// orderedNumber is every Number but the complex kinds.
type orderedNumber interface {
	Number
	cmp.Ordered
}

func pickOrdered[U orderedNumber](inout, in []ValIndex[U], sign int) {
	pick(inout, in, sign, cmp.Compare[U])
}

// pick sets inout[i] to whichever of in[i], inout[i] compares first by sign·compare on the
// values, then by the lower index.
func pick[U Number](inout, in []ValIndex[U], sign int, compare func(a, b U) int) {
	in = in[:len(inout)]
	for i, a := range in {
		b := inout[i]
		if c := sign * compare(a.Value, b.Value); c > 0 || c == 0 && a.Index < b.Index {
			inout[i] = a
		}
	}
}
