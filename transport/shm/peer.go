package shm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/view"
	"github.com/gorun-hpc/gorun/transport"
)

// The types the rest of gorun sees through transport's interfaces.
var (
	_ transport.Endpoint   = (*peer)(nil)
	_ transport.Counted    = (*peer)(nil)
	_ transport.Rendezvous = (*announcement)(nil)
	_ transport.Poller     = (*Transport)(nil)
)

// peer is one other rank of the node as this rank sees it: the rings and bulk pipes between
// the two, the records waiting for room, and the large messages in flight. It is the
// transport.Endpoint to that rank. Its code lies by idea: the send side and its queue in
// send.go, what the driver does with each arriving record in recv.go, the large-message
// rendezvous in rendezvous.go, the bulk pumps in pump.go, and its end (loss, close) in
// lifecycle.go.
//
// Locks. mu guards the sending side; inMu guards the list of fetches. No code holds both at
// once (end, and Fetch, take one after releasing the other), so there is no order between
// them to keep. Neither is held while a completion is told or the sink is called (a
// completion may send again and take mu); notify takes no lock of the peer's and may be
// called with mu held. A function that must be called with mu held is named ...Locked, and
// each function that takes a lock releases it before it returns. The driver's fields (rx,
// bulkW, bulkR, streams) take no lock: only the driver touches them, or Close once no
// goroutine drives.
type peer struct {
	t     *Transport
	idx   int // local index
	world int
	pid   int

	// The peer's control words, which this side writes (summary bit) or reads (sleeping,
	// cmaState), and its doorbell.
	sleeping   *atomic.Uint32
	bell       int            // the peer's eventfd (see doorbell.go)
	summary    *atomic.Uint64 // the word of the peer's summary holding this rank's bit
	summaryBit uint64
	cmaState   *atomic.Uint32

	// Sending side. mu guards it; senders and the driver take it.
	mu    sync.Mutex
	tx    producer
	queue []outRecord // records that found no room in the ring, in order
	// queued is len(queue): stored under mu whenever queue changes, loaded without it by the
	// driver (Poll, hasWork, Sleep) to skip the peer when nothing waits. A stale 0 only
	// puts off writing the queue to the driver's next poll.
	queued atomic.Int32
	cookie uint64
	sends  map[uint64]*largeSend // announced, awaiting CTS or FIN
	lost   error
	sent   transport.Counters
	// The open batch (Config.BatchLimit > 1): its first record is written but not published
	// (heldPos), heldCount records are in it; flushTimer publishes it after FlushTimeout.
	held       bool
	heldPos    uint64
	heldCount  int
	flushTimer *time.Timer
	// heldSince is when the open batch began (UnixNano; 0: none), for the driver's check.
	heldSince atomic.Int64
	closed    bool // the transport is closing: a late flush timer must not touch the segment

	// Receiving side, and the streams in flight: the driver's alone.
	rx      consumer
	bulkW   bulkWriter
	bulkR   bulkReader
	streams []*largeSend // CTS received: being streamed through bulkW, in order

	// inMu guards fetches, which Fetch appends from any goroutine, and inEnded: once the
	// peer has ended (end), Fetch completes with inEnded instead of appending, so no fetch is
	// appended after end took the list. pumpIn, the driver's, takes it only to look at and
	// pop the head of the list, never while it copies.
	inMu    sync.Mutex
	fetches []*largeRecv // matched pipelined receives being drained from bulkR, in order
	inEnded error
	// nFetch is len(fetches): stored under inMu whenever fetches changes, loaded without it
	// by the driver (Poll, hasWork, exited) to skip pumpIn when nothing is matched. A stale
	// 0 only delays the first pump: Fetch wakes the driver after it appends.
	nFetch atomic.Int32

	// gone is set (by end, with lost) once the peer is lost or closed: the driver no longer
	// polls its ring, which may be corrupt or unmapped.
	gone atomic.Bool

	pidfd int // -1 if pidfd_open is unavailable
}

type outRecord struct {
	kind    recKind
	ctx     uint32
	tag     int32
	body    [rtsBodyLen]byte // RTS body or cookie
	bodyLen int
	payload []byte
	done    transport.Completion // told once written (nil: nothing to tell)
}

// largeSend is a message announced by RTS.
type largeSend struct {
	payload []byte
	off     int
	done    transport.Completion
	pinner  runtime.Pinner // protoCMA: the payload stays put while the receiver reads it (see addrOf)
	pinned  bool
}

func (s *largeSend) finish(err error) {
	if s.pinned {
		s.pinner.Unpin()
	}
	s.done.Complete(err)
}

// largeRecv is a matched pipelined receive.
type largeRecv struct {
	dst  []byte // len(dst) may be below size: the rest is discarded
	size int
	got  int
	done transport.Completion
}

func newPeer(t *Transport, i, bell int) *peer {
	mem, lay := t.seg.mem, &t.lay
	p := &peer{
		t:          t,
		idx:        i,
		world:      t.cfg.Local[i],
		pid:        t.cfg.Pids[i],
		sleeping:   view.Uint32At(mem, lay.ctl(i)+ctlSleepingOff),
		bell:       bell,
		summary:    view.Uint64At(mem, lay.summaryWord(i, t.me)),
		summaryBit: 1 << (t.me % 64),
		cmaState:   view.Uint32At(mem, lay.ctl(i)+ctlCMAStateOff),
		sends:      make(map[uint64]*largeSend),
		pidfd:      -1,
	}
	p.tx = producer{ringRegion: newRingRegion(mem[lay.ring(t.me, i):lay.ring(t.me, i)+lay.ringSize], lay.line)}
	p.rx = consumer{
		ringRegion: newRingRegion(mem[lay.ring(i, t.me):lay.ring(i, t.me)+lay.ringSize], lay.line),
		peerRank:   p.world,
		maxEager:   p.tx.maxPayload(),
	}
	p.bulkW = bulkWriter{bulkRegion: newBulkRegion(mem[lay.bulk(t.me, i):lay.bulk(t.me, i)+lay.bulkSize], lay.line, p.world)}
	p.bulkR = bulkReader{bulkRegion: newBulkRegion(mem[lay.bulk(i, t.me):lay.bulk(i, t.me)+lay.bulkSize], lay.line, p.world)}
	if fd, err := unix.PidfdOpen(p.pid, 0); err == nil {
		p.pidfd = fd
	}
	return p
}

// Sent implements transport.Counted.
func (p *peer) Sent() transport.Counters {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

func (p *peer) lostErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}
