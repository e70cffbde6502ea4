// Package sharedcopy copies into and out of memory that another core writes or reads: the
// rings and bulk pipes of the shared-memory transport.
//
// Why it exists: when a core writes a cache line that another core holds (the reader took
// the previous lap of the ring), an ordinary store must first fetch the line and invalidate
// the reader's copy (a read-for-ownership), one cross-core round trip per 64 bytes. Go's
// copy uses ordinary vector stores on AMD CPUs, and measured on a Zen 5 guest a
// producer→consumer pipe made of them moves 5.9 GB/s, while the same pipe written with the
// x86 fast-string instruction REP MOVSB, which writes whole lines without fetching them
// first, moves 27.7 GB/s (C, shared/anchors/copybw ring 64K×16, same run). On the reading side
// it gains another ~10% (Go, BenchmarkBulkPipe in transport/shm). So both sides use REP MOVSB
// on amd64 for copies large enough to amortise its start-up cost, and the built-in copy
// everywhere else.
package sharedcopy

// repMovsbMin is the size from which REP MOVSB beats the built-in copy into lines another
// core holds (its start-up costs a few dozen cycles).
const repMovsbMin = 512

// Copy copies min(len(dst), len(src)) bytes from src to dst and returns the count, like the
// built-in copy. dst and src must not overlap.
func Copy(dst, src []byte) int {
	n := min(len(dst), len(src))
	if n < repMovsbMin || !haveRepMovsb {
		return copy(dst, src)
	}
	repMovsb(dst[:n], src[:n])
	return n
}
