package collective

import (
	"fmt"
	"reflect"
)

// Kind is the element type a reduction works on: the underlying basic type of the caller's T.
type Kind uint8

const (
	kindInvalid Kind = iota
	kindInt8
	kindInt16
	kindInt32
	kindInt64
	kindInt
	kindUint8
	kindUint16
	kindUint32
	kindUint64
	kindUint
	kindUintptr
	kindFloat32
	kindFloat64
	kindComplex64
	kindComplex128
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
	reflect.Int8: kindInt8, reflect.Int16: kindInt16, reflect.Int32: kindInt32, reflect.Int64: kindInt64,
	reflect.Int: kindInt, reflect.Uint8: kindUint8, reflect.Uint16: kindUint16, reflect.Uint32: kindUint32,
	reflect.Uint64: kindUint64, reflect.Uint: kindUint, reflect.Uintptr: kindUintptr,
	reflect.Float32: kindFloat32, reflect.Float64: kindFloat64,
	reflect.Complex64: kindComplex64, reflect.Complex128: kindComplex128,
}

// KindOf returns the Kind of T's underlying type (type Celsius float64 → float64), or
// kindInvalid if it is not a numeric basic type.
func KindOf[T any]() Kind {
	return kindOfReflect[reflect.TypeFor[T]().Kind()]
}

func (k Kind) isInteger() bool { return k >= kindInt8 && k <= kindUintptr }
func (k Kind) isFloat() bool   { return k == kindFloat32 || k == kindFloat64 }
func (k Kind) isComplex() bool { return k == kindComplex64 || k == kindComplex128 }

var kindSizes = [...]int{0, 1, 2, 4, 8, 8, 1, 2, 4, 8, 8, 8, 4, 8, 8, 16}

// size is the size of one element of kind in bytes (0 for kindInvalid).
func (k Kind) size() int {
	if int(k) < len(kindSizes) {
		return kindSizes[k]
	}
	return 0
}
