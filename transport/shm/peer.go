package shm

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/view"
	"github.com/gorun-hpc/gorun/transport"
)

// Protocols by size. A message up to the eager limit is one record in the ring. A larger one
// (or any synchronous send) is announced by an RTS record and moved once the receiver has
// matched it, by one of:
//
//	protoPipe    the receiver answers CTS; the sender streams the payload through the pair's
//	             bulk pipe while the receiver drains it (two copies, overlapped)
//	protoCMA     the receiver reads the sender's pinned buffer with process_vm_readv and
//	             answers FIN (one copy); if the read fails it answers CTS instead
//	protoInline  a small synchronous send: the payload rides in the RTS, the receiver answers
//	             FIN once matched
const (
	protoEager uint8 = iota // not a rendezvous: one record
	protoPipe
	protoCMA
	protoInline
)

var protoNames = [...]string{"eager", "pipelined", "single-copy", "inline-sync"}

// protocol chooses how a message of size bytes travels. cmaOK: the receiver can read this
// rank's memory (its probe succeeded).
func (c *Config) protocol(size int, sync, cmaOK bool) uint8 {
	switch {
	case !sync && size <= c.eagerMax():
		return protoEager
	case sync && size <= c.eagerMax()-rtsBodyLen:
		return protoInline
	case size > 0 && size >= c.CMAMin && size <= c.CMAMax && cmaOK:
		return protoCMA
	}
	return protoPipe
}

// Protocol names the protocol a message of size bytes takes under cfg (zero fields: the
// defaults), for gorun --explain: "eager", "inline-sync", "single-copy" or "pipelined".
func (c Config) Protocol(size int, sync, cmaOK bool) string {
	c.fillSizes()
	if c.DisableCMA {
		cmaOK = false
	}
	return protoNames[c.protocol(size, sync, cmaOK)]
}

// EagerMax is the largest message sent eagerly under cfg (zero fields: the defaults).
func (c Config) EagerMax() int {
	c.fillSizes()
	return c.eagerMax()
}

// rtsBody is the payload of an RTS record (then, for protoInline, the message itself):
//
//	+0 size u64  +8 cookie u64  +16 proto u8  +17..23 zero  +24 addr u64 (protoCMA)
const rtsBodyLen = 32

// peer is one other rank of the node.
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
	mu     sync.Mutex
	tx     producer
	queue  []outRecord  // records that found no room in the ring, in order
	queued atomic.Int32 // len(queue), for the driver's lock-free check
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
	// appended after end took the list. nFetch is len(fetches), for the driver's lock-free
	// check (Poll, hasWork).
	inMu    sync.Mutex
	fetches []*largeRecv // matched pipelined receives being drained from bulkR, in order
	inEnded error
	nFetch  atomic.Int32

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
	pinner  runtime.Pinner // protoCMA: the payload stays put while the receiver reads it
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
		peer:       p.world,
		maxEager:   p.tx.maxPayload(),
	}
	p.bulkW = bulkWriter{bulkRegion: newBulkRegion(mem[lay.bulk(t.me, i):lay.bulk(t.me, i)+lay.bulkSize], lay.line, p.world)}
	p.bulkR = bulkReader{bulkRegion: newBulkRegion(mem[lay.bulk(i, t.me):lay.bulk(i, t.me)+lay.bulkSize], lay.line, p.world)}
	if fd, err := unix.PidfdOpen(p.pid, 0); err == nil {
		p.pidfd = fd
	}
	return p
}

// Send implements transport.Endpoint.
func (p *peer) Send(env transport.Envelope, payload []byte, sync bool, c transport.Completion) {
	t := p.t
	proto := t.cfg.protocol(len(payload), sync, p.cmaState.Load() == cmaWorks)
	if proto == protoEager {
		p.put(outRecord{kind: recEager, ctx: env.Ctx, tag: int32(env.Tag), payload: payload, done: c})
		return
	}
	s := &largeSend{payload: payload, done: c}
	if proto == protoCMA {
		s.pinner.Pin(&payload[0])
		s.pinned = true
	}
	r := outRecord{kind: recRTS, ctx: env.Ctx, tag: int32(env.Tag), bodyLen: rtsBodyLen}
	binary.LittleEndian.PutUint64(r.body[0:], uint64(len(payload)))
	r.body[16] = proto
	if proto == protoCMA {
		binary.LittleEndian.PutUint64(r.body[24:], addrOf(payload))
	}
	if proto == protoInline {
		r.payload = payload
	}
	p.mu.Lock()
	if p.lost != nil {
		err := p.lost
		p.mu.Unlock()
		s.finish(err)
		return
	}
	p.cookie++
	binary.LittleEndian.PutUint64(r.body[8:], p.cookie)
	p.sends[p.cookie] = s
	p.putLocked(r)
}

// batchLocked adds the eager record just written at pos to the open batch (opening one if
// needed) and reports whether that published the batch (it reached BatchLimit).
func (p *peer) batchLocked(pos uint64) bool {
	if !p.held {
		p.held, p.heldPos, p.heldCount = true, pos, 0
		p.heldSince.Store(time.Now().UnixNano())
		if p.flushTimer == nil {
			p.flushTimer = time.AfterFunc(p.t.cfg.FlushTimeout, p.flushAndNotify)
		} else {
			p.flushTimer.Reset(p.t.cfg.FlushTimeout)
		}
	}
	p.heldCount++
	return p.heldCount >= p.t.cfg.BatchLimit && p.flushLocked()
}

// overdueLocked reports whether the open batch has been held for FlushTimeout or longer.
func (p *peer) overdueLocked() bool {
	return p.held && time.Now().UnixNano()-p.heldSince.Load() >= int64(p.t.cfg.FlushTimeout)
}

// flushLocked publishes the open batch, if any, and reports whether there was one.
func (p *peer) flushLocked() bool {
	if !p.held {
		return false
	}
	p.tx.release(p.heldPos)
	p.held = false
	p.heldSince.Store(0)
	p.flushTimer.Stop()
	return true
}

// flushAndNotify publishes the open batch and wakes the peer: the flush timeout's action, and
// the driver's when it finds a batch overdue (a spinning driver keeps timers from running).
//
// It notifies with mu held, so that close, which takes mu, cannot unmap the segment or close
// the peer's doorbell in between (notify takes no lock of the peer's).
func (p *peer) flushAndNotify() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed { // the segment may be unmapped
		return
	}
	if p.flushLocked() {
		p.t.notify(p, true)
	}
}

// control sends a CTS or FIN record naming cookie.
func (p *peer) control(kind recKind, cookie uint64) {
	r := outRecord{kind: kind, bodyLen: 8}
	binary.LittleEndian.PutUint64(r.body[:], cookie)
	p.put(r)
}

// put writes r into the ring now if nothing is queued before it and there is room, and
// queues it otherwise; the driver flushes the queue as the receiver makes room.
func (p *peer) put(r outRecord) {
	p.mu.Lock()
	if p.lost != nil {
		err := p.lost
		p.mu.Unlock()
		if r.done != nil {
			r.done.Complete(err)
		}
		return
	}
	p.putLocked(r)
}

// putLocked is put with p.mu held; it releases it.
func (p *peer) putLocked(r outRecord) {
	switch r.kind {
	case recEager:
		p.sent.Messages++
		p.sent.Bytes += uint64(len(r.payload))
	case recRTS:
		p.sent.Messages++
		p.sent.Bytes += binary.LittleEndian.Uint64(r.body[0:])
	}
	flushed := false
	if len(p.queue) == 0 {
		batch := r.kind == recEager && p.t.cfg.BatchLimit > 1
		// Anything but an eager record publishes the open batch first; so does an eager record
		// that finds the batch overdue. The send path enforces the timeout itself because a
		// sender that never blocks keeps Go's timers, and so flushTimer, from running.
		if !batch || p.overdueLocked() {
			flushed = p.flushLocked()
		}
		pos, ok := p.tx.writeHeld(batch && !p.held, r.kind, r.ctx, r.tag, r.body[:r.bodyLen], r.payload)
		if ok {
			publish := !batch || p.batchLocked(pos) || flushed
			p.mu.Unlock()
			if publish {
				p.t.notify(p, true)
			}
			if r.done != nil {
				r.done.Complete(nil)
			}
			return
		}
	}
	p.queue = append(p.queue, r)
	p.queued.Store(int32(len(p.queue)))
	p.tx.requestSpace()
	p.mu.Unlock()
	if flushed {
		p.t.notify(p, true)
	}
}

// flush writes queued records while there is room; the driver calls it.
func (p *peer) flush() bool {
	p.mu.Lock()
	released := p.flushLocked() // queued records come after the open batch
	var done []transport.Completion
	n := 0
	for len(p.queue) > 0 {
		r := &p.queue[0]
		if !p.tx.write(r.kind, r.ctx, r.tag, r.body[:r.bodyLen], r.payload) {
			p.tx.requestSpace()
			break
		}
		if r.done != nil {
			done = append(done, r.done)
		}
		p.queue[0] = outRecord{}
		p.queue = p.queue[1:]
		n++
	}
	p.queued.Store(int32(len(p.queue)))
	p.mu.Unlock()
	if n > 0 || released {
		p.t.notify(p, true) // one wake for the whole burst
	}
	for _, c := range done {
		c.Complete(nil)
	}
	return n > 0
}

// handle acts on one record from the peer's ring; the driver calls it.
func (p *peer) handle(rec *record) error {
	switch rec.kind {
	case recEager:
		env := transport.Envelope{Src: p.world, Ctx: rec.ctx, Tag: int(rec.tag), Size: len(rec.payload)}
		p.t.sink.Deliver(env, rec.payload, nil)
	case recRTS:
		b := rec.payload
		size := binary.LittleEndian.Uint64(b[0:])
		rv := &rendezvous{p: p, size: int(size), cookie: binary.LittleEndian.Uint64(b[8:]), proto: b[16],
			addr: binary.LittleEndian.Uint64(b[24:])}
		switch {
		case size > 1<<62:
			return p.rx.corrupt("rts announcing %d bytes", size)
		case rv.proto == protoInline:
			if uint64(len(b)-rtsBodyLen) != size {
				return p.rx.corrupt("inline rts of %d bytes announcing %d", len(b)-rtsBodyLen, size)
			}
			rv.inline = append([]byte(nil), b[rtsBodyLen:]...)
		case rv.proto != protoPipe && rv.proto != protoCMA || len(b) != rtsBodyLen:
			return p.rx.corrupt("rts protocol %d, %d bytes", rv.proto, len(b))
		}
		p.t.sink.Deliver(transport.Envelope{Src: p.world, Ctx: rec.ctx, Tag: int(rec.tag), Size: int(size)}, nil, rv)
	case recCTS, recFin:
		cookie := binary.LittleEndian.Uint64(rec.payload)
		p.mu.Lock()
		s := p.sends[cookie]
		delete(p.sends, cookie)
		p.mu.Unlock()
		if s == nil {
			return p.rx.corrupt("%v for unknown send %d", rec.kind, cookie)
		}
		if rec.kind == recFin {
			s.finish(nil)
		} else {
			p.streams = append(p.streams, s)
		}
	}
	return nil
}

// rendezvous is an announced large message; Fetch moves it once matched.
type rendezvous struct {
	p      *peer
	size   int
	cookie uint64
	proto  uint8
	addr   uint64
	inline []byte
}

func (rv *rendezvous) Fetch(dst []byte, c transport.Completion) {
	p := rv.p
	if err := p.lostErr(); err != nil {
		c.Complete(err)
		return
	}
	switch rv.proto {
	case protoInline:
		copy(dst, rv.inline)
		p.control(recFin, rv.cookie)
		c.Complete(nil)
		return
	case protoCMA:
		if err := cmaRead(p.pid, rv.addr, dst); err == nil {
			p.control(recFin, rv.cookie)
			c.Complete(nil)
			return
		}
		// The kernel refused: fall back to the pipelined path.
	}
	p.inMu.Lock()
	if err := p.inEnded; err != nil {
		p.inMu.Unlock()
		c.Complete(err)
		return
	}
	p.fetches = append(p.fetches, &largeRecv{dst: dst, size: rv.size, done: c})
	p.nFetch.Store(int32(len(p.fetches)))
	p.inMu.Unlock()
	p.control(recCTS, rv.cookie)
	p.t.Wake() // the driver may be asleep; it must start draining
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

// pumpOut streams the payloads of matched sends into the bulk pipe; the driver calls it.
func (p *peer) pumpOut() bool {
	did := false
	chunk := p.t.cfg.Chunk
	for len(p.streams) > 0 {
		s := p.streams[0]
		for s.off < len(s.payload) {
			n, err := p.bulkW.write(s.payload[s.off:], chunk)
			if n == 0 && err == nil {
				p.bulkW.wantSpace.Store(1)
				n, err = p.bulkW.write(s.payload[s.off:], chunk)
			}
			if err != nil {
				p.lose(err)
				return true
			}
			if n == 0 {
				if did {
					p.t.notify(p, false)
				}
				return did
			}
			s.off += n
			did = true
			p.t.notify(p, false)
		}
		p.streams[0] = nil
		p.streams = p.streams[1:]
		s.finish(nil)
		did = true
	}
	return did
}

// pumpIn drains the bulk pipe into matched receives; the driver calls it.
func (p *peer) pumpIn() bool {
	did := false
	chunk := p.t.cfg.Chunk
	for {
		p.inMu.Lock()
		if len(p.fetches) == 0 {
			p.inMu.Unlock()
			return did
		}
		r := p.fetches[0]
		p.inMu.Unlock()
		for r.got < r.size {
			var dst []byte
			want := r.size - r.got
			if r.got < len(r.dst) {
				dst = r.dst[r.got:]
				want = len(dst)
			}
			n, wake, err := p.bulkR.read(dst, want, chunk)
			if err != nil {
				p.lose(err)
				return true
			}
			if wake {
				p.t.notify(p, false)
			}
			if n == 0 {
				return did
			}
			r.got += n
			did = true
		}
		p.inMu.Lock()
		p.fetches[0] = nil
		p.fetches = p.fetches[1:]
		p.nFetch.Store(int32(len(p.fetches)))
		p.inMu.Unlock()
		r.done.Complete(nil)
	}
}

// end fails everything in flight with the peer with err, and makes every later send or fetch
// fail with it; it reports whether this call ended the peer (false: it had ended before). The
// driver calls it, or Close once no goroutine drives (streams are the driver's).
func (p *peer) end(err error) bool {
	p.mu.Lock()
	if p.lost != nil {
		p.mu.Unlock()
		return false
	}
	p.lost = err
	p.gone.Store(true)
	queue, sends := p.queue, p.sends
	p.queue, p.sends = nil, map[uint64]*largeSend{}
	p.queued.Store(0)
	p.mu.Unlock()
	p.inMu.Lock()
	fetches := p.fetches
	p.fetches, p.inEnded = nil, err
	p.nFetch.Store(0)
	p.inMu.Unlock()
	streams := p.streams
	p.streams = nil
	for _, r := range queue {
		if r.done != nil {
			r.done.Complete(err)
		}
	}
	for _, s := range sends {
		s.finish(err)
	}
	for _, s := range streams {
		s.finish(err)
	}
	for _, r := range fetches {
		r.done.Complete(err)
	}
	return true
}

// lose ends the peer and reports it lost, failing whatever still waits on it; the driver
// calls it.
func (p *peer) lose(err error) {
	err = fmt.Errorf("pid %d: %w", p.pid, err)
	if p.end(err) {
		p.t.sink.Lost(p.world, err)
	}
}

// close publishes what is still held for the peer, completes whatever is in flight with
// transport.ErrClosed, and releases the peer's descriptors. Transport.Close calls it once no
// goroutine drives.
func (p *peer) close() {
	p.mu.Lock()
	// A batch still held would never reach the peer, which may be waiting for it (the last
	// messages of the world's final barrier, say).
	if p.lost == nil && p.flushLocked() {
		p.t.notify(p, true)
	}
	p.closed = true
	if p.flushTimer != nil {
		p.flushTimer.Stop()
	}
	p.mu.Unlock()
	p.end(transport.ErrClosed)
	// The descriptors are closed under mu: flushAndNotify rings the peer's doorbell with mu
	// held, after checking closed.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
	if p.bell >= 0 {
		unix.Close(p.bell)
		p.bell = -1
	}
}
