//go:build amd64 && !race

package sharedcopy

// The race detector cannot see memory touched by assembly, so race builds use the built-in
// copy (copy_other.go).
const haveRepMovsb = true

// repMovsb copies len(dst) bytes from src (len(src) >= len(dst)) with REP MOVSB.
//
//go:noescape
func repMovsb(dst, src []byte)
