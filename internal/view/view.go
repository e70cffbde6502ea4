// Package view reinterprets typed slices as bytes and back. It is the one place in gorun where
// a Go slice's memory is viewed as another type; everything else goes through it.
//
// Only pointer-free fixed-size element types may be viewed (comm's Elem constraint guarantees
// that), so the garbage collector never sees a pointer hidden in bytes or bytes taken for a
// pointer.
package view

import (
	"sync/atomic"
	"unsafe"
)

// Bytes returns the memory of s as bytes, without copying. It is legal on an empty or nil
// slice (it never takes &s[0]).
func Bytes[T any](s []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}

// As returns the memory of b as a []T of len(b)/size(T) elements, without copying. Bytes past
// the last whole element are not part of the result. b must be aligned for T: slices that came
// from Bytes of a []T, or from Go allocations of at least 8 bytes, are.
func As[T any](b []byte) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size)
}

// Retype returns the memory of s as a []U of the same byte length, without copying. T and U
// must have the same size; it is how a named element type (type Celsius float64) reaches a
// kernel written for its underlying type.
func Retype[U, T any](s []T) []U {
	var t T
	var u U
	if unsafe.Sizeof(t) != unsafe.Sizeof(u) {
		panic("view: Retype between types of different sizes")
	}
	return unsafe.Slice((*U)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// Uint64At returns the 8-byte word at off in b for atomic access to shared memory. off must be a
// multiple of 8 and b 8-byte aligned (mmap'd segments and Go allocations of 8 bytes or more are).
func Uint64At(b []byte, off int) *atomic.Uint64 {
	// Checked by hand, not by indexing: b[off+7] would be a plain read of shared memory.
	if off < 0 || off+8 > len(b) || off%8 != 0 {
		panic("view: 64-bit word outside the slice or misaligned")
	}
	return (*atomic.Uint64)(unsafe.Pointer(&b[off]))
}

// Uint32At returns the 4-byte word at off in b for atomic access (futex words are 32 bits).
func Uint32At(b []byte, off int) *atomic.Uint32 {
	if off < 0 || off+4 > len(b) || off%4 != 0 {
		panic("view: 32-bit word outside the slice or misaligned")
	}
	return (*atomic.Uint32)(unsafe.Pointer(&b[off]))
}
