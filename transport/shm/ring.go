package shm

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/sharedcopy"
	"github.com/gorun-hpc/gorun/internal/view"
	"github.com/gorun-hpc/gorun/transport"
)

// A ring carries records from one producer (the sending rank) to one consumer (the receiving
// rank). Its region in the segment:
//
//	+0       | head u64 (consumer writes) | wantSpace u32 (producer sets, consumer clears) | pad to line |
//	+line    | records: cap bytes, each record starting on a line boundary                            |
//
// The head line is not the consumer's alone: the producer writes wantSpace there. It does so
// only when the ring is full (requestSpace), when it must wait for the consumer anyway, so
// the line moves between the two only when room is short; in the steady state the producer
// only reads it (head, and only when its cached head shows no room).
//
// A record:
//
//	+0   stamp u64   position+1 of this record: written last, with a release store; it publishes
//	                 the record. 0 means "nothing here yet".
//	+8   len   u32   payload bytes
//	+12  tag   i32
//	+16  ctx   u32
//	+20  kind  u8    recEager, recRTS, ...
//	+21  flags u8    0
//	+22  seq   u16   counts Eager and RTS records of this ring, from 1 (mod 2^16)
//	+24  payload (len bytes), then padding to the next line
//
// 24 bytes of header leave 40 bytes of a 64-byte line for the payload: a small message is one
// line, so one cache line transfer.
//
// Positions are byte counts that only grow (64 bits: they never wrap, so a stamp is never
// seen twice — no ABA); a position's place in the ring is position mod cap. The producer keeps
// its position (tail) to itself; the consumer publishes its position (head) so the producer
// knows what space is free.
//
// Invariant that makes stale bytes harmless: the first word of every free line is 0. The
// consumer keeps it: before it publishes a head past a record, it zeroes the first word of
// every line the record covered (lines it has just read, so they are in its cache). The
// producer writes only into free lines. So the word at the consumer's position is either 0
// or the true stamp, never a leftover of an earlier lap or user bytes that look like a stamp,
// and the producer touches no line but the ones it writes: a small message costs one cache
// line transfer each way.
const (
	recHeaderLen = 24

	ringHeadOff      = 0
	ringWantSpaceOff = 8
)

type recKind uint8

const (
	recEager recKind = iota + 1 // payload: the whole message
	recRTS                      // payload: rtsBody (+ inline data): a rendezvous announcement
	recCTS                      // payload: cookie u64: stream that send through the bulk pipe
	recFin                      // payload: cookie u64: the receiver took the data itself
	recPad                      // skip to the end of the ring
	recKindEnd
)

// record is a decoded record header; payload aliases ring memory until the consumer releases
// the record.
type record struct {
	kind    recKind
	ctx     uint32
	tag     int32
	seq     uint16
	payload []byte
	size    uint64 // bytes the record occupies in the ring
}

// ringRegion is a ring's memory: the head line (head, which the consumer writes, and
// wantSpace, which the producer sets and the consumer clears), then the record area.
type ringRegion struct {
	line      int
	cap       uint64 // bytes of the record area: a multiple of line
	data      []byte
	head      *atomic.Uint64
	wantSpace *atomic.Uint32
}

// ringBytes is the size of a ring region with a record area of capacity bytes.
func ringBytes(capacity, line int) int { return line + capacity }

func newRingRegion(mem []byte, line int) ringRegion {
	return ringRegion{
		line:      line,
		cap:       uint64(len(mem) - line),
		data:      mem[line:],
		head:      view.Uint64At(mem, ringHeadOff),
		wantSpace: view.Uint32At(mem, ringWantSpaceOff),
	}
}

func (r *ringRegion) stampAt(pos uint64) *atomic.Uint64 {
	return view.Uint64At(r.data, int(pos%r.cap))
}

func (r *ringRegion) roundUp(n uint64) uint64 {
	l := uint64(r.line)
	return (n + l - 1) / l * l
}

// producer is the writing end of a ring. It must only be used by one goroutine at a time:
// its user holds the peer's mu (a sender in putLocked, the driver in writeQueued, the flush
// timer in flushAndNotify). Two accesses are made without mu: requestSpace, an atomic store,
// which Sleep also makes (renewRequests); and Sleep's hasWork, which reads headCache once it
// has loaded peer.queued > 0. That read is safe: a sender writes headCache only while the
// queue is empty, and the store of queued that makes it non-empty comes after (an atomic,
// so the load orders the read after the write); while the queue is not empty only the
// driver, hasWork's own goroutine, writes headCache (writeQueued).
type producer struct {
	ringRegion
	tail      uint64 // next write position
	headCache uint64 // the consumer's head as last read
	seq       uint16
}

// maxPayload is the largest payload a record may carry in a ring of this capacity: the
// record and a pad before it (shorter than the record) must fit in an empty ring, so a record
// may take up to half of the capacity.
func (r *ringRegion) maxPayload() int {
	l := uint64(r.line)
	return int(r.cap/2/l*l) - recHeaderLen
}

// write appends one record with the payload in parts (concatenated) and publishes it. It
// reports false, writing nothing, if the ring has no room now; the caller queues the record
// and retries once the consumer has made room.
//
// With hold set, the record is written but its stamp is withheld; it returns the record's
// position, which release publishes later. The consumer reads in order and stops at the held
// record, so every record written after it is held back with it: a batch becomes visible with
// one store.
func (p *producer) write(kind recKind, ctx uint32, tag int32, parts ...[]byte) bool {
	_, ok := p.writeHeld(false, kind, ctx, tag, parts...)
	return ok
}

// release publishes the record at pos that writeHeld withheld.
func (p *producer) release(pos uint64) { p.stampAt(pos).Store(pos + 1) }

// writeHeld is write, with the stamp withheld if hold is set; it returns the record's position.
func (p *producer) writeHeld(hold bool, kind recKind, ctx uint32, tag int32, parts ...[]byte) (uint64, bool) {
	n := 0
	for _, b := range parts {
		n += len(b)
	}
	need := p.roundUp(uint64(recHeaderLen + n))
	idx := p.tail % p.cap
	toEnd := p.cap - idx
	total := need
	if need > toEnd {
		total += toEnd // a pad record fills the rest of the ring first
	}
	if p.cap-(p.tail-p.headCache) < total {
		p.headCache = p.head.Load()
		if p.cap-(p.tail-p.headCache) < total {
			return 0, false
		}
	}
	if need > toEnd {
		p.putHeader(idx, recPad, uint32(toEnd-recHeaderLen), 0, 0, 0)
		p.publish(toEnd, false)
		idx = 0
	}
	seq := uint16(0)
	if kind == recEager || kind == recRTS {
		p.seq++
		seq = p.seq
	}
	p.putHeader(idx, kind, uint32(n), ctx, tag, seq)
	off := idx + recHeaderLen
	for _, b := range parts {
		off += uint64(sharedcopy.Copy(p.data[off:], b))
	}
	pos := p.tail
	p.publish(need, hold)
	return pos, true
}

func (p *producer) putHeader(idx uint64, kind recKind, n uint32, ctx uint32, tag int32, seq uint16) {
	h := p.data[idx : idx+recHeaderLen]
	binary.LittleEndian.PutUint32(h[8:], n)
	binary.LittleEndian.PutUint32(h[12:], uint32(tag))
	binary.LittleEndian.PutUint32(h[16:], ctx)
	h[20], h[21] = byte(kind), 0
	binary.LittleEndian.PutUint16(h[22:], seq)
}

// publish makes the record of size bytes at tail visible by storing its stamp (the release
// that publishes header and payload), unless hold is set, then advances tail.
func (p *producer) publish(size uint64, hold bool) {
	if !hold {
		p.stampAt(p.tail).Store(p.tail + 1)
	}
	p.tail += size
}

// requestSpace asks the consumer to wake this side once it frees space. The caller then
// looks at head again before it waits: the driver's next writeQueued retries the write
// (which reloads head), and Sleep's hasWork compares head with headCache.
//
// Why no wake-up is lost. Go's sync/atomic operations are sequentially consistent: they fall
// in one total order that keeps each goroutine's (each process's) program order. The
// producer stores wantSpace = 1 (Sp), then loads head (Lp); the consumer stores head (Sc,
// consumer.publish), then loads wantSpace (Lc, in flush or flushIfWanted). If Sp comes
// before Sc in the total order, it comes before Lc, and the consumer sees the request (it
// clears it, and its caller notifies the producer); otherwise Sc comes before Sp and so
// before Lp, and the producer sees the new head. The pair that prevents the lost wake-up is
// the producer's store to wantSpace against the consumer's load of it, together with the
// consumer's store to head against the producer's load of it. (A release store and an
// acquire load would not do: neither orders a store before a later load.) The bulk pipe's
// wantSpace works the same way (bulkWriter.requestSpace).
//
// Across many rounds two more things are needed. Every request the consumer clears is
// reported to its caller, who notifies: release's quarter-ring publications leave the load
// of wantSpace to drain's flushIfWanted rather than clear a request and drop it. And the
// consumer may clear a request the producer made after it had already seen the head that
// came with the clear (Sc, then Lp, Sp, then Lc); the producer then learns nothing new from
// head, and the consumer's next head would find no request. So before it sleeps the producer
// stores its request again, after declaring itself asleep (Transport.Sleep, renewRequests):
// a consumer that clears that request does so after the declaration, so its notify finds
// the declaration and rings (or finds it already taken, by a waker that rang).
func (p *producer) requestSpace() {
	p.wantSpace.Store(1)
}

// consumer is the reading end of a ring, used by the one goroutine driving progress.
type consumer struct {
	ringRegion
	peerRank  int    // world rank of the producer, for errors
	pos       uint64 // position of the next record
	published uint64 // head as last stored
	seq       uint16
	maxEager  int // largest eager payload accepted
}

// next returns the record at the consumer's position if one is published, skipping pads.
// A record that breaks the format is an error (*transport.CorruptError): the segment is not
// to be trusted any more.
func (c *consumer) next() (record, bool, error) {
	for {
		idx := c.pos % c.cap
		stamp := c.stampAt(c.pos).Load()
		if stamp == 0 {
			return record{}, false, nil
		}
		if stamp != c.pos+1 {
			return record{}, false, c.corrupt("stamp %d at position %d", stamp, c.pos)
		}
		h := c.data[idx : idx+recHeaderLen]
		n := uint64(binary.LittleEndian.Uint32(h[8:]))
		rec := record{
			tag:  int32(binary.LittleEndian.Uint32(h[12:])),
			ctx:  binary.LittleEndian.Uint32(h[16:]),
			kind: recKind(h[20]),
			seq:  binary.LittleEndian.Uint16(h[22:]),
		}
		if rec.kind == 0 || rec.kind >= recKindEnd || h[21] != 0 {
			return record{}, false, c.corrupt("record kind %d flags %d", h[20], h[21])
		}
		if n > c.cap-idx-recHeaderLen {
			return record{}, false, c.corrupt("record of %d bytes at offset %d of a %d-byte ring", n, idx, c.cap)
		}
		if rec.kind == recPad {
			if n != c.cap-idx-recHeaderLen {
				return record{}, false, c.corrupt("pad of %d bytes at offset %d", n, idx)
			}
			// Only the pad's first line was written in this lap; the rest are still zero.
			c.stampAt(c.pos).Store(0)
			c.pos += c.cap - idx
			continue
		}
		if err := c.check(&rec, n); err != nil {
			return record{}, false, err
		}
		rec.payload = c.data[idx+recHeaderLen : idx+recHeaderLen+n]
		rec.size = c.roundUp(recHeaderLen + n)
		return rec, true, nil
	}
}

// check validates a record's fields against its kind and the ring's sequence.
func (c *consumer) check(rec *record, n uint64) error {
	if rec.tag < 0 {
		return c.corrupt("negative tag %d", rec.tag)
	}
	switch rec.kind {
	case recEager, recRTS:
		if rec.seq != c.seq+1 {
			return c.corrupt("sequence number %d, expected %d", rec.seq, c.seq+1)
		}
		if rec.kind == recEager && n > uint64(c.maxEager) {
			return c.corrupt("eager record of %d bytes (limit %d)", n, c.maxEager)
		}
		if rec.kind == recRTS && n < rtsBodyLen {
			return c.corrupt("rts record of %d bytes", n)
		}
	case recCTS, recFin:
		if n != 8 || rec.seq != 0 {
			return c.corrupt("%v record of %d bytes, seq %d", rec.kind, n, rec.seq)
		}
	}
	return nil
}

// release consumes rec: it zeroes the first word of each line the record covered (keeping
// the invariant that free lines start with 0) and moves past it. It publishes the head when
// a quarter of the ring has been consumed since the last publication; flush publishes the
// rest. It leaves the producer's request for room alone: its caller checks it after the
// records it takes (drain's flushIfWanted, or flush).
//
// The zeroing is a plain store, not an atomic one, though the producer stores stamps into the
// same words atomically: these words are ordinary payload bytes in other laps anyway, and
// the producer writes a freed line only after it has read a head published after the zeroing
// (head's store and load order them), so the two never race. A sequentially consistent store
// here would cost a full fence per record.
func (c *consumer) release(rec record) {
	if rec.kind == recEager || rec.kind == recRTS {
		c.seq++
	}
	for off := uint64(0); off < rec.size; off += uint64(c.line) {
		binary.LittleEndian.PutUint64(c.data[(c.pos+off)%c.cap:], 0)
	}
	c.pos += rec.size
	if c.pos-c.published >= c.cap/4 {
		c.publish()
	}
}

// publish stores the consumer's position as head. It does not look at wantSpace: whoever
// publishes must load it afterwards and, if the producer asked for room, clear the request
// and notify the producer (flush does both steps; release leaves the second to drain's
// flushIfWanted). That store of head before the load of wantSpace is the consumer's half of
// requestSpace's argument; a request cleared and not reported would leave a sleeping
// producer to sleep out its timeout.
func (c *consumer) publish() {
	c.head.Store(c.pos)
	c.published = c.pos
}

// flush publishes the consumer's position, if it moved, and reports whether the producer
// asked to be woken for space; the caller then notifies it.
func (c *consumer) flush() bool {
	if c.published == c.pos {
		return false
	}
	c.publish()
	if c.wantSpace.Load() != 0 {
		c.wantSpace.Store(0)
		return true
	}
	return false
}

// flushIfWanted publishes the consumer's position (if it moved) only if the producer asked for
// room, and reports whether it did; flush publishes anyway. drain calls it after every batch
// of records it took, so it also makes the check that release's quarter-ring publications
// leave to it. Between the two, release publishes every quarter ring, so a producer that has
// room never waits for a publication, and one that has none always gets it.
func (c *consumer) flushIfWanted() bool {
	if c.wantSpace.Load() == 0 {
		return false
	}
	if c.published != c.pos {
		c.publish()
	}
	c.wantSpace.Store(0)
	return true
}

// ready reports whether a record is waiting (a cheap check before sleeping).
func (c *consumer) ready() bool { return c.stampAt(c.pos).Load() != 0 }

func (c *consumer) corrupt(format string, args ...any) error {
	return &transport.CorruptError{Peer: c.peerRank, Reason: "shared-memory ring: " + fmt.Sprintf(format, args...)}
}

func (k recKind) String() string {
	switch k {
	case recEager:
		return "eager"
	case recRTS:
		return "rts"
	case recCTS:
		return "cts"
	case recFin:
		return "fin"
	case recPad:
		return "pad"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}
