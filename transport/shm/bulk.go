package shm

import (
	"fmt"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/sharedcopy"
	"github.com/gorun-hpc/gorun/internal/view"
	"github.com/gorun-hpc/gorun/transport"
)

// A bulk pipe carries the payloads of large messages from one rank to another by the
// pipelined two-copy protocol: the sender copies chunks in while the receiver copies earlier
// chunks out, so the two copies run at once on two cores. It is a plain byte ring; which
// message the bytes belong to is agreed through the record ring (the sender streams messages
// in the order their CTS records arrive, the receiver sent those in the order it matched).
//
//	+0        | tail u64 (producer writes)                                                 | pad to line |
//	+line     | head u64 (consumer writes) | wantSpace u32 (producer sets, consumer clears) | pad to line |
//	+2*line   | data: cap bytes                                                                         |
//
// Positions only grow; tail - head is the number of bytes waiting, never more than cap. Each
// end trusts only the position it writes itself: the other end's position is checked against
// it on every load (head <= tail <= head + cap), and one that breaks the bound means the peer
// is corrupt, never a count of bytes or of room.
//
// As in the record ring, the head line also holds wantSpace, which the producer writes, but
// only when the pipe is too full for its next chunk (requestSpace).
const (
	bulkTailOff      = 0
	bulkWantSpaceOff = 8 // on the head line
)

type bulkRegion struct {
	peerRank  int // world rank of the other end, for errors
	cap       uint64
	data      []byte
	tail      *atomic.Uint64
	head      *atomic.Uint64
	wantSpace *atomic.Uint32
}

func bulkBytes(capacity, line int) int { return 2*line + capacity }

func newBulkRegion(mem []byte, line, peerRank int) bulkRegion {
	return bulkRegion{
		peerRank:  peerRank,
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
// pipe runs full. A head behind the one last read or ahead of the tail is an error.
func (w *bulkWriter) write(p []byte, chunk int) (int, error) {
	n := min(len(p), chunk)
	if n == 0 {
		return 0, nil
	}
	if w.cap-(w.pos-w.headCache) < uint64(n) {
		head := w.head.Load()
		if head < w.headCache || head > w.pos {
			return 0, w.corrupt("head %d outside [%d, %d]", head, w.headCache, w.pos)
		}
		w.headCache = head
		if w.cap-(w.pos-w.headCache) < uint64(n) {
			return 0, nil
		}
	}
	idx := w.pos % w.cap
	k := sharedcopy.Copy(w.data[idx:], p[:n])
	sharedcopy.Copy(w.data, p[k:n]) // the part that wraps to the start
	w.pos += uint64(n)
	w.tail.Store(w.pos) // publishes the bytes
	return n, nil
}

// requestSpace asks the reader to wake this side once it frees room; the caller then retries
// its write, which reloads head (pumpOut), and before it sleeps compares head with headCache
// (Sleep's hasWork). The argument is the ring's (producer.requestSpace): with sequentially
// consistent atomics, the writer stores wantSpace = 1 and then loads head, the reader (read)
// stores head and then loads wantSpace; whichever store comes first in the total order, the
// other side's load sees it, so either the writer's reload sees the room or the reader sees
// the request, clears it and reports it (read's wake result, on which pumpIn notifies). The
// writer's store to wantSpace against the reader's load of it, with the reader's store to
// head against the writer's load of it, is the pair that prevents the lost wake-up; and, as
// for the ring, Sleep stores the request again after declaring itself asleep, so that a
// request the reader clears together with a head the writer had already seen is renewed.
func (w *bulkWriter) requestSpace() { w.wantSpace.Store(1) }

// bulkReader is the receiving end, used by the goroutine driving progress.
type bulkReader struct {
	bulkRegion
	pos uint64
}

// read copies up to chunk waiting bytes into dst (nil dst: discards them), frees their space
// and returns how many it took, and whether the writer asked to be woken for space. A tail
// behind this end's position or more than cap ahead of it is an error.
func (r *bulkReader) read(dst []byte, n, chunk int) (int, bool, error) {
	tail := r.tail.Load()
	if tail < r.pos || tail-r.pos > r.cap {
		return 0, false, r.corrupt("tail %d outside [%d, %d]", tail, r.pos, r.pos+r.cap)
	}
	n = int(min(tail-r.pos, uint64(n), uint64(chunk)))
	if n == 0 {
		return 0, false, nil
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
		return n, true, nil
	}
	return n, false, nil
}

func (b *bulkRegion) corrupt(format string, args ...any) error {
	return &transport.CorruptError{Peer: b.peerRank, Reason: "shared-memory bulk pipe: " + fmt.Sprintf(format, args...)}
}

// ready reports whether bytes are waiting.
func (r *bulkReader) ready() bool { return r.tail.Load() != r.pos }
