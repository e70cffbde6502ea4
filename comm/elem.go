package comm

import (
	"unsafe"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/internal/view"
)

// Elem is the set of numeric element kinds: a fixed-size, pointer-free numeric kind, or any
// named type whose underlying type is one (type Celsius float64). int and uint are 8 bytes on
// every platform gorun supports (64-bit Linux). Data movement takes any pointer-free type
// (elemtype.go), so Elem now only names these kinds for code that uses it as a constraint;
// Number, the reductions' constraint, is built on it.
type Elem interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int |
		~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint |
		~float32 | ~float64 | ~complex64 | ~complex128
}

// Number is the element type of a reduction. Every Elem is a number; which operations apply
// depends on the kind (see Op).
type Number interface{ Elem }

func sizeOf[T any]() int {
	var zero T
	return int(unsafe.Sizeof(zero))
}

func bytesOf[T any](s []T) []byte { return view.Bytes(s) }

func kindOf[T Elem]() collective.Kind { return collective.KindOf[T]() }
