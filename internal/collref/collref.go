// Package collref is the reference that comm's collective tests compare against: what each
// reduction op makes of two elements, and inputs whose every reduction is exact. The
// in-process tests (comm/inprocess_coll_test.go) and the rank programs of the multi-process
// tests (comm/testdata) use the same one, so the two kinds of test check the same thing.
package collref

import (
	"fmt"

	"github.com/gorun-hpc/gorun/comm"
)

// Number is the element types the reference computes with: every type comm's built-in
// ops take.
type Number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint |
		~float32 | ~float64
}

// Apply is op applied to a and b, as MPI defines it: the logical ops give 1 or 0, and the
// bitwise ones act on the integer value (comm refuses them on floats; here they truncate).
func Apply[T Number](op comm.Op, a, b T) T {
	truth := func(v bool) T {
		if v {
			return 1
		}
		return 0
	}
	switch op {
	case comm.Sum:
		return a + b
	case comm.Prod:
		return a * b
	case comm.Min:
		return min(a, b)
	case comm.Max:
		return max(a, b)
	case comm.Band:
		return T(int64(a) & int64(b))
	case comm.Bor:
		return T(int64(a) | int64(b))
	case comm.Bxor:
		return T(int64(a) ^ int64(b))
	case comm.Land:
		return truth(a != 0 && b != 0)
	case comm.Lor:
		return truth(a != 0 || b != 0)
	}
	panic(fmt.Sprintf("collref: op %v", op))
}

// floatValues are float inputs whose sums and products over up to 8 ranks are exact in any
// order of combination, so that a reference computed in rank order compares exactly with
// a result computed in any other.
var floatValues = [...]float64{0.5, -1, 2, -0.25, 4, 1.5, -3, 0.75, 1}

// half tells floats from integers at run time: T(half) is 0 only for an integer type.
var half = 0.5

// IsFloat reports whether T is a floating-point type.
func IsFloat[T Number]() bool { return T(half) != 0 }

// Input is rank's contribution of count elements to the call with seed: small integers
// (-6 to 6), or the floatValues, so that every op's result is exact in any order.
func Input[T Number](rank, count, seed int) []T {
	out := make([]T, count)
	float := IsFloat[T]()
	for i := range out {
		if float {
			out[i] = T(floatValues[(rank*5+i*3+seed)%len(floatValues)])
		} else {
			out[i] = T((rank*31+i*7+seed)%13 - 6)
		}
	}
	return out
}
