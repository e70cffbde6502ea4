package shm

import (
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/sharedcopy"
	"github.com/gorun-hpc/gorun/internal/view"
)

// A bulk pipe carries the payloads of large messages from one rank to another by the
// pipelined two-copy protocol: the sender copies chunks in while the receiver copies earlier
// chunks out, so the two copies run at once on two cores. It is a plain byte ring; which
// message the bytes belong to is agreed through the record ring (the sender streams messages
// in the order their CTS records arrive, the receiver sent those in the order it matched).
//
//	+0        | tail u64 (producer writes)                                       | pad to line |
//	+line     | head u64 (consumer writes) | wantSpace u32 (producer sets)       | pad to line |
//	+2*line   | data: cap bytes                                                               |
//
// Positions only grow; tail - head is the number of bytes waiting.
const (
	bulkTailOff      = 0
	bulkWantSpaceOff = 8 // on the head line
)

type bulkRegion struct {
	cap       uint64
	data      []byte
	tail      *atomic.Uint64
	head      *atomic.Uint64
	wantSpace *atomic.Uint32
}

func bulkBytes(capacity, line int) int { return 2*line + capacity }

func newBulkRegion(mem []byte, line int) bulkRegion {
	return bulkRegion{
		cap:       uint64(len(mem) - 2*line),
		data:      mem[2*line:],
		tail:      view.Uint64At(mem, bulkTailOff),
		head:      view.Uint64At(mem, line),
		wantSpace: view.Uint32At(mem, line+bulkWantSpaceOff),
	}
}

// bulkWriter is the sending end, used by the goroutine driving progress.
type bulkWriter struct {
	bulkRegion
	pos       uint64 // tail as this side knows it
	headCache uint64
}

// write copies the next chunk of p (chunk bytes, or all of p if shorter) into the pipe and
// publishes it; it returns how many bytes it took, 0 if there is not room for the whole
// chunk. Moving whole chunks keeps the two sides from handing each other slivers when the
// pipe runs full.
func (w *bulkWriter) write(p []byte, chunk int) int {
	n := min(len(p), chunk)
	if n == 0 {
		return 0
	}
	if w.cap-(w.pos-w.headCache) < uint64(n) {
		w.headCache = w.head.Load()
		if w.cap-(w.pos-w.headCache) < uint64(n) {
			return 0
		}
	}
	idx := w.pos % w.cap
	k := sharedcopy.Copy(w.data[idx:], p[:n])
	sharedcopy.Copy(w.data, p[k:n]) // the part that wraps to the start
	w.pos += uint64(n)
	w.tail.Store(w.pos) // publishes the bytes
	return n
}

// bulkReader is the receiving end, used by the goroutine driving progress.
type bulkReader struct {
	bulkRegion
	pos uint64
}

// read copies up to chunk waiting bytes into dst (nil dst: discards them), frees their space
// and returns how many it took, and whether the writer asked to be woken for space.
func (r *bulkReader) read(dst []byte, n, chunk int) (int, bool) {
	avail := r.tail.Load() - r.pos
	n = int(min(avail, uint64(n), uint64(chunk)))
	if n == 0 {
		return 0, false
	}
	if dst != nil {
		idx := r.pos % r.cap
		k := sharedcopy.Copy(dst[:n], r.data[idx:])
		sharedcopy.Copy(dst[k:n], r.data)
	}
	r.pos += uint64(n)
	r.head.Store(r.pos)
	if r.wantSpace.Load() != 0 {
		r.wantSpace.Store(0)
		return n, true
	}
	return n, false
}

// ready reports whether bytes are waiting.
func (r *bulkReader) ready() bool { return r.tail.Load() != r.pos }
