//go:build !amd64 || race

package sharedcopy

const haveRepMovsb = false

func repMovsb(dst, src []byte) { copy(dst, src) }
