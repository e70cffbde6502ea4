package rank

import (
	"math/bits"
	"sync"

	"github.com/gorun-hpc/gorun/transport"
)

// Buffers for unexpected eager messages, pooled by power-of-two size class so that a steady
// stream of unexpected messages reuses memory. Classes run from 64 bytes to transport.MaxEager.
const (
	minClassShift = 6
	maxClassShift = 20 // 1 << maxClassShift == transport.MaxEager
)

var bufferClasses [maxClassShift - minClassShift + 1]sync.Pool

func sizeClass(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// getBuffer returns a buffer of length n.
func getBuffer(n int) []byte {
	if n == 0 {
		return nil
	}
	if n > transport.MaxEager {
		return make([]byte, n)
	}
	c := sizeClass(n)
	if p, ok := bufferClasses[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(c+minClassShift))
}

// putBuffer returns a buffer obtained from getBuffer.
func putBuffer(b []byte) {
	if cap(b) == 0 {
		return
	}
	c := sizeClass(cap(b))
	if cap(b) != 1<<(c+minClassShift) {
		return // not one of ours
	}
	b = b[:0]
	bufferClasses[c].Put(&b)
}
