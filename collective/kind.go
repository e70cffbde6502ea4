package collective

import (
	"fmt"
	"reflect"
)

// Kind is the element type a reduction works on: the underlying basic type of the caller's T.
type Kind uint8

const (
	KindInvalid Kind = iota
	Int8
	Int16
	Int32
	Int64
	Int
	Uint8
	Uint16
	Uint32
	Uint64
	Uint
	Uintptr
	Float32
	Float64
	Complex64
	Complex128
)

var kindNames = [...]string{"invalid", "int8", "int16", "int32", "int64", "int", "uint8", "uint16",
	"uint32", "uint64", "uint", "uintptr", "float32", "float64", "complex64", "complex128"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

var kindOfReflect = map[reflect.Kind]Kind{
	reflect.Int8: Int8, reflect.Int16: Int16, reflect.Int32: Int32, reflect.Int64: Int64,
	reflect.Int: Int, reflect.Uint8: Uint8, reflect.Uint16: Uint16, reflect.Uint32: Uint32,
	reflect.Uint64: Uint64, reflect.Uint: Uint, reflect.Uintptr: Uintptr,
	reflect.Float32: Float32, reflect.Float64: Float64,
	reflect.Complex64: Complex64, reflect.Complex128: Complex128,
}

// KindOf returns the Kind of T's underlying type (type Celsius float64 → Float64), or
// KindInvalid if it is not a numeric basic type.
func KindOf[T any]() Kind {
	return kindOfReflect[reflect.TypeFor[T]().Kind()]
}

func (k Kind) isInteger() bool { return k >= Int8 && k <= Uintptr }
func (k Kind) isFloat() bool   { return k == Float32 || k == Float64 }
func (k Kind) isComplex() bool { return k == Complex64 || k == Complex128 }

var kindSizes = [...]int{0, 1, 2, 4, 8, 8, 1, 2, 4, 8, 8, 8, 4, 8, 8, 16}

// Size is the size of one element of kind in bytes (0 for KindInvalid).
func (k Kind) Size() int {
	if int(k) < len(kindSizes) {
		return kindSizes[k]
	}
	return 0
}
