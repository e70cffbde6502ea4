package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transporttest"
	"github.com/gorun-hpc/gorun/transport"
)

// Fuzz targets for what another local rank writes into the segment (STYLE rule 12), beyond
// FuzzRingRecord's raw ring bytes: the records a peer's handle() acts on (FuzzPeerRecords)
// and the positions of the bulk pipes (FuzzBulkPositions). Both run a rank over heap memory
// (newHostileNode): this rank is local rank 1, and the fuzzer plays local rank 0 through its
// own ends of the rings and pipes. Seeds are in testdata/fuzz (GORUN_WRITE_FUZZ_SEEDS=1 go
// test -run TestWriteFuzzSeeds ./transport/shm/ regenerates them).

const (
	fzRing     = 4096 // small, so that records wrap and the ring fills
	fzBulk     = 1024
	fzChunk    = 256
	fzFetchCap = 512 // the sink fetches at most this much of a rendezvous message
	// fzSettle bounds the polls one step may take: a node that still reports progress
	// after that many is spinning.
	fzSettle = 10000
	// fzTimeout bounds one exec. Rank 1's code runs on the fuzzing goroutine and cannot be
	// interrupted: past the bound, watchdog crashes the process, so that the fuzzer keeps
	// the input as a crasher.
	fzTimeout = 2 * time.Second
)

// watchdog crashes the process, with every goroutine's stack, if the exec it guards runs
// past fzTimeout; call the function it returns when the exec ends.
func watchdog(what string) (stop func()) {
	timer := time.AfterFunc(fzTimeout, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("%s ran past %v: rank 1 is stuck\n%s", what, fzTimeout, buf))
	})
	return func() { timer.Stop() }
}

// The sends of this rank that are pending when rank 0 starts writing: cookie 1 goes by the
// bulk pipe (too large for the ring), cookie 2 is a small synchronous send, inline in its RTS.
var (
	fzPipeSend = payloadFor(7, 3000)
	fzSyncSend = []byte("syncsend")
)

type fzMsg struct {
	env   transport.Envelope
	data  []byte // eager: the payload; rendezvous: the fetch buffer
	fetch *transporttest.Completion
}

// fzSink records deliveries and fetches every rendezvous message at once (at most
// fzFetchCap bytes of it).
type fzSink struct {
	mu   sync.Mutex
	got  []fzMsg
	lost []error
	bad  []string
}

func (s *fzSink) Deliver(env transport.Envelope, payload []byte, rv transport.Rendezvous) {
	s.mu.Lock()
	if env.Src != 0 || env.Tag < 0 || env.Size < 0 || rv == nil && env.Size != len(payload) || rv != nil && payload != nil {
		s.bad = append(s.bad, fmt.Sprintf("delivered %+v with %d payload bytes, rendezvous %v", env, len(payload), rv != nil))
		s.mu.Unlock()
		return
	}
	m := fzMsg{env: env}
	if rv == nil {
		m.data = bytes.Clone(payload)
	} else {
		m.data = make([]byte, min(env.Size, fzFetchCap))
		m.fetch = &transporttest.Completion{}
	}
	s.got = append(s.got, m)
	s.mu.Unlock()
	if rv != nil {
		rv.Fetch(m.data, m.fetch)
	}
}

func (s *fzSink) Lost(peer int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if peer != 0 {
		s.bad = append(s.bad, fmt.Sprintf("lost rank %d, the only peer is rank 0", peer))
	}
	s.lost = append(s.lost, err)
}

// counts is what the sink holds, without copying it (checked after every step).
func (s *fzSink) counts() (got int, lost []error, bad []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got), s.lost, s.bad
}

func (s *fzSink) state() ([]fzMsg, []error, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fzMsg(nil), s.got...), append([]error(nil), s.lost...), s.bad
}

// hostileNode is a node of two ranks over heap memory (so the race detector sees every
// access): the Transport of rank 1, which is under test, and rank 0's ends of the rings and
// pipes, through which the fuzzer writes.
type hostileNode struct {
	t    *Transport
	p    *peer // rank 1's view of rank 0
	sink *fzSink
	mem  []byte
	tx   *producer   // rank 0's end of ring[0][1]
	rx   *consumer   // rank 0's end of ring[1][0]
	bw   *bulkWriter // rank 0's end of bulk[0][1]
	br   *bulkReader // rank 0's end of bulk[1][0]

	// What rank 0 received from rank 1.
	records  []ctrlRec
	streamed []byte
}

// ctrlRec is a record rank 1 wrote to rank 0 (an RTS of its own, or a CTS or FIN answering one).
type ctrlRec struct {
	kind   recKind
	cookie uint64
	size   uint64
	proto  uint8
}

// newHostileNode builds rank 1's Transport the way New does, over heap memory instead of a
// shared segment: no doorbells (nobody sleeps), no pidfd (pid -1, so single copy always
// fails and falls back to the pipe, as it does when the kernel refuses).
func newHostileNode(tb testing.TB) *hostileNode {
	sink := &fzSink{}
	cfg := Config{Sink: sink, Self: 1, Local: []int{0, 1}, Pids: []int{-1, -1}, Line: testLine,
		RingBytes: fzRing, BulkBytes: fzBulk, Chunk: fzChunk, CollSlot: 2 * testLine, DisableCMA: true}
	cfg.fillSizes()
	lay, err := newLayout(2, cfg.Line, cfg.RingBytes, cfg.BulkBytes, cfg.CollSlot)
	if err != nil {
		tb.Fatal(err)
	}
	mem := make([]byte, lay.size)
	t := &Transport{cfg: cfg, seg: &segment{mem: mem}, lay: lay, me: 1, sink: sink}
	t.init([]int{-1, -1})
	region := func(off, size int) []byte { return mem[off : off+size] }
	h := &hostileNode{t: t, p: t.peers[0], sink: sink, mem: mem}
	h.tx = &producer{ringRegion: newRingRegion(region(lay.ring(0, 1), lay.ringSize), lay.line)}
	h.rx = &consumer{ringRegion: newRingRegion(region(lay.ring(1, 0), lay.ringSize), lay.line), peerRank: 1, maxEager: lay.ringCap}
	h.bw = &bulkWriter{bulkRegion: newBulkRegion(region(lay.bulk(0, 1), lay.bulkSize), lay.line, 1)}
	h.br = &bulkReader{bulkRegion: newBulkRegion(region(lay.bulk(1, 0), lay.bulkSize), lay.line, 1)}
	if h.p.pidfd >= 0 {
		tb.Fatal("pidfd_open(-1) succeeded")
	}
	return h
}

// settle drives rank 1 (as its waiting goroutine would) and lets rank 0 take what rank 1
// sent it, until neither has anything left to do.
// write writes the next chunk of p into rank 0's pipe towards rank 1, whose head is honest.
func (h *hostileNode) write(tb testing.TB, p []byte) int {
	n, err := h.bw.write(p, fzChunk)
	if err != nil {
		tb.Fatalf("rank 0 wrote its pipe to rank 1: %v", err)
	}
	return n
}

func (h *hostileNode) settle(tb testing.TB) {
	var buf [fzChunk]byte
	for i := 0; ; i++ {
		if i == fzSettle {
			tb.Fatalf("rank 1 still reports progress after %d polls", fzSettle)
		}
		did := h.t.Poll()
		for {
			rec, ok, err := h.rx.next()
			if err != nil {
				tb.Fatalf("rank 1 wrote a bad record: %v", err)
			}
			if !ok {
				break
			}
			c := ctrlRec{kind: rec.kind}
			switch rec.kind {
			case recRTS:
				c.size, c.cookie, c.proto = binary.LittleEndian.Uint64(rec.payload), binary.LittleEndian.Uint64(rec.payload[8:]), rec.payload[16]
			case recCTS, recFin:
				c.cookie = binary.LittleEndian.Uint64(rec.payload)
			}
			h.records = append(h.records, c)
			h.rx.release(rec)
			did = true
		}
		h.rx.flush()
		for {
			n, _, err := h.br.read(buf[:], len(buf), len(buf))
			if err != nil {
				tb.Fatalf("rank 0 read its pipe from rank 1: %v", err)
			}
			if n == 0 {
				break
			}
			h.streamed = append(h.streamed, buf[:n]...)
			did = true
		}
		if !did {
			return
		}
	}
}

// writeRecord is rank 0 writing one record; if the ring looks full it asks for room and
// lets rank 1 publish its position (as rank 1 does before it sleeps), then tries once more.
func (h *hostileNode) writeRecord(kind recKind, ctx uint32, tag int32, payload []byte) bool {
	if h.tx.write(kind, ctx, tag, payload) {
		return true
	}
	h.tx.requestSpace()
	h.p.rx.flush()
	return h.tx.write(kind, ctx, tag, payload)
}

// fzByte is the content of byte off of a stream the harness writes.
func fzByte(off uint64, seed byte) byte { return byte(off*131+off>>8) ^ seed }

// peerModel is a reference reading of what rank 1 must do with each record rank 0 writes
// (consumer.next and check, then peer.handle, then the fetch the sink makes), independent of
// that code.
type peerModel struct {
	cap      uint64
	maxEager uint64
	lost     bool
	reason   string
	msgs     []fzMsg
	fetchOK  []bool   // per message: its fetch completed without error
	want     [][]byte // per message: what its fetch must land
	pipe     []int    // messages waiting for bulk data, in order
	bulk     []byte   // everything rank 0 wrote into its bulk pipe
	used     int      // bytes of bulk the fetches have taken
	sends    map[uint64]bool
	sendOK   map[uint64]bool
	ctsOrder []uint64
	control  []ctrlRec // what rank 1 sends rank 0 after its own two RTS
}

func newPeerModel(h *hostileNode) *peerModel {
	return &peerModel{cap: h.tx.cap, maxEager: uint64(h.p.rx.maxEager),
		sends: map[uint64]bool{1: true, 2: true}, sendOK: map[uint64]bool{}}
}

func (m *peerModel) corrupt(why string) { m.lost, m.reason = true, why }

// record models one record of kind written at ring offset idx.
func (m *peerModel) record(kind recKind, ctx uint32, tag int32, payload []byte, idx uint64) {
	if m.lost {
		return
	}
	n := uint64(len(payload))
	switch {
	case kind == 0 || kind >= recKindEnd:
		m.corrupt("kind")
		return
	case kind == recPad:
		if n != m.cap-idx-recHeaderLen {
			m.corrupt("pad size")
		}
		return
	case tag < 0:
		m.corrupt("tag")
		return
	}
	le := binary.LittleEndian
	switch kind {
	case recEager:
		if n > m.maxEager {
			m.corrupt("eager size")
			return
		}
		m.deliver(transport.Envelope{Src: 0, Ctx: ctx, Tag: int(tag), Size: len(payload)}, append([]byte{}, payload...))
	case recRTS:
		if n < rtsBodyLen {
			m.corrupt("rts body")
			return
		}
		size, cookie, proto := le.Uint64(payload), le.Uint64(payload[8:]), payload[16]
		env := transport.Envelope{Src: 0, Ctx: ctx, Tag: int(tag), Size: int(size)}
		dst := min(size, fzFetchCap)
		switch {
		case size > 1<<62:
			m.corrupt("rts size")
		case proto == protoInline:
			if n-rtsBodyLen != size {
				m.corrupt("inline size")
				return
			}
			i := m.deliver(env, nil)
			m.fetchOK[i], m.want[i] = true, payload[rtsBodyLen:][:dst]
			m.control = append(m.control, ctrlRec{kind: recFin, cookie: cookie})
		case (proto == protoPipe || proto == protoCMA) && n == rtsBodyLen:
			i := m.deliver(env, nil)
			if proto == protoCMA && dst == 0 { // nothing to read: single copy "succeeds"
				m.fetchOK[i], m.want[i] = true, []byte{}
				m.control = append(m.control, ctrlRec{kind: recFin, cookie: cookie})
				return
			}
			m.control = append(m.control, ctrlRec{kind: recCTS, cookie: cookie})
			m.pipe = append(m.pipe, i)
			m.pump()
		default:
			m.corrupt("rts protocol")
		}
	case recCTS, recFin:
		if n != 8 {
			m.corrupt("control size")
			return
		}
		cookie := le.Uint64(payload)
		if !m.sends[cookie] {
			m.corrupt("unknown cookie")
			return
		}
		delete(m.sends, cookie)
		m.sendOK[cookie] = true // a FIN at once; a CTS once streamed, within the step
		if kind == recCTS {
			m.ctsOrder = append(m.ctsOrder, cookie)
		}
	}
}

// deliver models a delivery: eager with payload, or a rendezvous (payload nil).
func (m *peerModel) deliver(env transport.Envelope, payload []byte) int {
	msg := fzMsg{env: env, data: payload}
	if payload == nil {
		msg.fetch = &transporttest.Completion{}
	}
	m.msgs = append(m.msgs, msg)
	m.fetchOK = append(m.fetchOK, false)
	m.want = append(m.want, nil)
	return len(m.msgs) - 1
}

// wrote models rank 0 writing b into its bulk pipe.
func (m *peerModel) wrote(b []byte) {
	if !m.lost {
		m.bulk = append(m.bulk, b...)
		m.pump()
	}
}

// pump completes the fetches, in order, whose bytes have all been written.
func (m *peerModel) pump() {
	for len(m.pipe) > 0 {
		i := m.pipe[0]
		size := uint64(m.msgs[i].env.Size)
		if size > uint64(len(m.bulk)-m.used) {
			return
		}
		m.fetchOK[i], m.want[i] = true, m.bulk[m.used:][:min(size, fzFetchCap)]
		m.used += int(size)
		m.pipe = m.pipe[1:]
	}
}

var fzKinds = [8]recKind{0, recEager, recRTS, recCTS, recFin, recPad, recKindEnd, 0xff}

// runPeerRecords interprets in as what rank 0 does, step by step, and checks rank 1 against
// the model after each step. A step is an op byte:
//
//	0x00-0xbf  write a record: kind fzKinds[op&7], tag op>>5 (negated if op&8), then a length
//	           byte (times 16 if op&16) and that many payload bytes (a pad's are zero; a pad
//	           of length 0 is the exact pad to the end of the ring)
//	0xc0-0xdf  nothing (rank 1 polls)
//	0xe0-0xff  a length byte: write 8 times that many bytes into the bulk pipe
func runPeerRecords(t *testing.T, in []byte) {
	defer watchdog("FuzzPeerRecords")()
	h := newHostileNode(t)
	m := newPeerModel(h)
	var pipeSent, syncSent transporttest.Completion
	h.p.Send(transport.Envelope{Src: 1, Ctx: 1, Tag: 1, Size: len(fzPipeSend)}, fzPipeSend, false, &pipeSent)
	h.p.Send(transport.Envelope{Src: 1, Ctx: 1, Tag: 2, Size: len(fzSyncSend)}, fzSyncSend, true, &syncSent)
	h.settle(t)
	next := func() int {
		if len(in) == 0 {
			return 0
		}
		b := in[0]
		in = in[1:]
		return int(b)
	}
	for step := 0; len(in) > 0; step++ {
		op := byte(next())
		switch {
		case op >= 0xe0:
			p := make([]byte, 8*next())
			for i := range p {
				p[i] = fzByte(h.bw.pos+uint64(i), 0)
			}
			n := 0
			for n < len(p) {
				k := h.write(t, p[n:])
				if k == 0 {
					h.settle(t)
					if k = h.write(t, p[n:]); k == 0 {
						break
					}
				}
				n += k
			}
			m.wrote(p[:n])
		case op >= 0xc0:
		default:
			kind := fzKinds[op&7]
			tag := int32(op >> 5)
			if op&8 != 0 {
				tag = -1 - tag
			}
			lb := next()
			n := lb
			if op&16 != 0 {
				n *= 16
			}
			idx := h.tx.tail % h.tx.cap
			var payload []byte
			if kind == recPad {
				if lb == 0 {
					n = int(h.tx.cap - idx - recHeaderLen)
				}
				payload = make([]byte, n)
			} else {
				payload = in[:min(n, len(in))]
				in = in[len(payload):]
			}
			if h.tx.roundUp(uint64(recHeaderLen+len(payload))) > h.tx.cap-idx {
				idx = 0 // the producer pads to the end first
			}
			ctx := uint32(step)
			if h.writeRecord(kind, ctx, tag, payload) {
				m.record(kind, ctx, tag, payload, idx)
			}
		}
		h.settle(t)
		got, lost, bad := h.sink.counts()
		for _, s := range bad {
			t.Fatalf("step %d: %s", step, s)
		}
		if got != len(m.msgs) || len(lost) != map[bool]int{false: 0, true: 1}[m.lost] {
			t.Fatalf("step %d (op %#x): %d delivered and %d lost %v; the model says %d and lost %v (%s)",
				step, op, got, len(lost), lost, len(m.msgs), m.lost, m.reason)
		}
		if len(lost) == 1 && !errors.Is(lost[0], transport.ErrCorrupt) {
			t.Fatalf("step %d: lost with %v, want ErrCorrupt", step, lost[0])
		}
	}

	got, _, _ := h.sink.state()
	for i, g := range got {
		w := m.msgs[i]
		if g.env != w.env || (g.fetch == nil) != (w.fetch == nil) {
			t.Fatalf("message %d: %+v (rendezvous %v), want %+v (rendezvous %v)", i, g.env, g.fetch != nil, w.env, w.fetch != nil)
		}
		if g.fetch == nil {
			if !bytes.Equal(g.data, w.data) {
				t.Fatalf("eager message %d: payload differs", i)
			}
			continue
		}
		calls, err := g.fetch.Result()
		switch {
		case m.fetchOK[i] && (calls != 1 || err != nil):
			t.Errorf("fetch of message %d: %d completions, error %v; want one, without error", i, calls, err)
		case m.fetchOK[i] && !bytes.Equal(g.data[:len(m.want[i])], m.want[i]):
			t.Errorf("fetch of message %d landed the wrong bytes", i)
		case !m.fetchOK[i] && m.lost && (calls != 1 || err == nil):
			t.Errorf("fetch of message %d after the loss: %d completions, error %v; want one, with the loss", i, calls, err)
		case !m.fetchOK[i] && !m.lost && calls != 0:
			t.Errorf("fetch of message %d completed (%v) before its data was written", i, err)
		}
	}
	for cookie, s := range map[uint64]*transporttest.Completion{1: &pipeSent, 2: &syncSent} {
		calls, err := s.Result()
		switch {
		case m.sendOK[cookie] && (calls != 1 || err != nil):
			t.Errorf("send %d answered: %d completions, error %v; want one, without error", cookie, calls, err)
		case !m.sendOK[cookie] && m.lost && (calls != 1 || err == nil):
			t.Errorf("send %d after the loss: %d completions, error %v; want one, with the loss", cookie, calls, err)
		case !m.sendOK[cookie] && !m.lost && calls != 0:
			t.Errorf("send %d completed (%v) without an answer", cookie, err)
		}
	}

	// What rank 1 sent: its two RTS, then a CTS or FIN per fetch (those queued when the peer
	// was lost are dropped), and through its pipe the payloads asked for by CTS, in order.
	want := append([]ctrlRec{
		{kind: recRTS, cookie: 1, size: uint64(len(fzPipeSend)), proto: protoPipe},
		{kind: recRTS, cookie: 2, size: uint64(len(fzSyncSend)), proto: protoInline},
	}, m.control...)
	if len(h.records) > len(want) || !m.lost && len(h.records) != len(want) {
		t.Fatalf("rank 1 sent %d records, want %d: %+v", len(h.records), len(want), h.records)
	}
	for i, r := range h.records {
		if r != want[i] {
			t.Fatalf("record %d from rank 1: %+v, want %+v", i, r, want[i])
		}
	}
	var stream []byte
	for _, c := range m.ctsOrder {
		stream = append(stream, map[uint64][]byte{1: fzPipeSend, 2: fzSyncSend}[c]...)
	}
	if !bytes.Equal(h.streamed, stream[:min(len(h.streamed), len(stream))]) || !m.lost && len(h.streamed) != len(stream) {
		t.Fatalf("rank 1 streamed %d bytes, want %d (or a prefix after a loss)", len(h.streamed), len(stream))
	}
}

// FuzzPeerRecords: whatever records a local peer writes (kinds, tags, lengths, RTS bodies,
// cookies, interleaved with bulk data), rank 1 never panics or spins, and does what a
// reference reading of the protocol says: each record is delivered well formed (eager
// payload of its announced size, rendezvous fetched through the right protocol, with the
// right data) or is corrupt, and then the peer is lost exactly once with ErrCorrupt and
// whatever waited on it completes with the loss; a CTS or FIN for a send that is not pending
// is corrupt; every send and fetch completes at most once.
func FuzzPeerRecords(f *testing.F) {
	f.Fuzz(runPeerRecords)
}

// runBulkPositions interprets in as rank 0 writing its pipe honestly, or scribbling over
// the positions of both pipes, while rank 1 pumps data in and out, and checks rank 1 after
// each step. Op bytes (op % 9):
//
//	0  rank 0 writes 4×(next byte) bytes into bulk[0][1]
//	1  rank 0 sets bulk[0][1]'s tail: next byte odd: 8 bytes absolute, else int16 relative
//	2  rank 1 matches a receive: size u16, buffer of min(size, 4×(next byte)) bytes
//	3  rank 1 pumps in (pumpIn)
//	4  rank 1 queues a send of 16×(next byte) bytes for the pipe and pumps out
//	5  rank 1 pumps out (pumpOut)
//	6  rank 0 reads up to 4×(next byte) bytes from bulk[1][0]
//	7  rank 0 sets bulk[1][0]'s head, as in 1
//	8  rank 0 sets both wantSpace words to the next byte
func runBulkPositions(t *testing.T, in []byte) {
	defer watchdog("FuzzBulkPositions")()
	h := newHostileNode(t)
	r, w := &h.p.bulkR, &h.p.bulkW
	capacity := r.cap
	next := func() int {
		if len(in) == 0 {
			return 0
		}
		b := in[0]
		in = in[1:]
		return int(b)
	}
	position := func(cur uint64) uint64 {
		if next()&1 == 1 {
			var b [8]byte
			for i := range b {
				b[i] = byte(next())
			}
			return binary.LittleEndian.Uint64(b[:])
		}
		return cur + uint64(int64(int16(next()|next()<<8)))
	}
	type fetch struct {
		buf   []byte // the receive buffer, then a guard
		dst   []byte
		start uint64 // its first byte's offset in rank 0's stream
		done  *transporttest.Completion
	}
	var fetches []fetch
	var fetched uint64 // stream offset after the last matched receive
	var sends []*transporttest.Completion
	var sent uint64                   // offset in rank 1's stream after the last queued send
	var tailTouched, headTouched bool // the peer wrote a position itself: data checks are off
	const guard = 0xa5

	// A peer found corrupt is lost and never pumped again (Poll skips it): the steps end.
	for step := 0; len(in) > 0 && !h.p.gone.Load(); step++ {
		op := next() % 9
		switch op {
		case 0:
			p := make([]byte, 4*next())
			for i := range p {
				p[i] = fzByte(h.bw.pos+uint64(i), 0)
			}
			h.write(t, p)
		case 1:
			tailTouched = true
			h.bw.tail.Store(position(h.bw.tail.Load()))
		case 2:
			size := next() | next()<<8
			n := min(size, 4*next())
			buf := bytes.Repeat([]byte{guard}, n+16)
			f := fetch{buf: buf, dst: buf[:n], start: fetched, done: &transporttest.Completion{}}
			fetched += uint64(size)
			fetches = append(fetches, f)
			h.p.inMu.Lock()
			h.p.fetches = append(h.p.fetches, &largeRecv{dst: f.dst, size: size, done: f.done})
			h.p.nFetch.Store(int32(len(h.p.fetches)))
			h.p.inMu.Unlock()
		case 3:
			pos, tail := r.pos, r.tail.Load()
			avail := tail - pos // the bytes waiting, if tail is consistent
			wanting := false    // a matched receive waits for bytes, so pumpIn reads the tail
			h.p.inMu.Lock()
			for _, f := range h.p.fetches {
				wanting = wanting || f.got < f.size
			}
			h.p.inMu.Unlock()
			h.p.pumpIn()
			moved := r.pos - pos
			switch {
			case avail <= capacity && moved > avail:
				t.Fatalf("step %d: rank 1 took %d bytes from its pipe, %d were waiting", step, moved, avail)
			case avail > capacity && moved > 0:
				t.Fatalf("step %d: rank 1 took %d bytes from its pipe at a tail %d bytes ahead of a %d-byte pipe", step, moved, avail, capacity)
			case avail > capacity && wanting && !h.p.gone.Load():
				t.Fatalf("step %d: rank 1 saw a tail %d bytes ahead of a %d-byte pipe and did not lose its peer", step, avail, capacity)
			}
			if r.head.Load() != r.pos {
				t.Fatalf("step %d: rank 1 published head %d at position %d", step, r.head.Load(), r.pos)
			}
		case 4, 5:
			if op == 4 {
				p := make([]byte, 16*next())
				for i := range p {
					p[i] = fzByte(sent+uint64(i), 0x5c)
				}
				sent += uint64(len(p))
				done := &transporttest.Completion{}
				sends = append(sends, done)
				h.p.streams = append(h.p.streams, &largeSend{payload: p, done: done})
			}
			// Room checks use headCache: the value cached at an earlier step, then, once that
			// shows no room, the head reloaded (the peer does not move it during the pump).
			// Writing within the room a consistent cache shows is right whatever the head
			// says. Writing past it means the writer took the head at some position between
			// the two: a head it may take is no lower than the cache, no higher than that
			// position, and leaves at most the capacity outstanding.
			pos, cached, head := w.pos, w.headCache, w.head.Load()
			h.p.pumpOut()
			switch {
			case w.pos == pos:
			case cached > pos || pos-cached > capacity:
				t.Fatalf("step %d: rank 1 wrote its pipe from %d with its cached head at %d", step, pos, cached)
			case w.pos-cached <= capacity:
			case w.headCache != head:
				t.Fatalf("step %d: rank 1 wrote its pipe to %d past its cached head %d without reading the head", step, w.pos, cached)
			case head < cached || head > w.pos || w.pos-head > capacity:
				t.Fatalf("step %d: rank 1 wrote its pipe to %d, taking head %d (cached %d, position %d)", step, w.pos, head, cached, pos)
			}
		case 6:
			buf := make([]byte, 4*next())
			pos := h.br.pos
			n, _, err := h.br.read(buf, len(buf), len(buf))
			if err != nil {
				continue // rank 1's tail, which this test does not move, is honest; headTouched moved rank 0's own head
			}
			for i := range n {
				if !headTouched && buf[i] != fzByte(pos+uint64(i), 0x5c) {
					t.Fatalf("step %d: byte %d of rank 1's stream differs", step, pos+uint64(i))
				}
			}
		case 7:
			headTouched = true
			h.br.head.Store(position(h.br.head.Load()))
		case 8:
			v := uint32(next())
			r.wantSpace.Store(v)
			w.wantSpace.Store(v)
		}
	}

	for i, f := range fetches {
		if !bytes.Equal(f.buf[len(f.dst):], bytes.Repeat([]byte{guard}, 16)) {
			t.Fatalf("fetch %d: bytes written past its buffer", i)
		}
		calls, err := f.done.Result()
		if calls > 1 {
			t.Fatalf("fetch %d completed %d times", i, calls)
		}
		if calls == 0 || err != nil || tailTouched {
			continue
		}
		// Completed from an honest pipe: every byte is what rank 0 wrote there.
		if f.start+uint64(len(f.dst)) > h.bw.pos {
			t.Fatalf("fetch %d completed with bytes rank 0 never wrote", i)
		}
		for j, b := range f.dst {
			if b != fzByte(f.start+uint64(j), 0) {
				t.Fatalf("fetch %d: byte %d differs", i, j)
			}
		}
	}
	for i, s := range sends {
		if calls, _ := s.Result(); calls > 1 {
			t.Fatalf("send %d completed %d times", i, calls)
		}
	}
	// Nothing outside the two pipes was touched.
	l := &h.t.lay
	for _, span := range [][2]int{{0, l.bulk(0, 1)}, {l.bulk(0, 1) + l.bulkSize, l.bulk(1, 0)}, {l.bulk(1, 0) + l.bulkSize, len(h.mem)}} {
		if i := bytes.IndexFunc(h.mem[span[0]:span[1]], func(r rune) bool { return r != 0 }); i >= 0 {
			t.Fatalf("segment byte %d, outside the pipes, was written", span[0]+i)
		}
	}
}

// FuzzBulkPositions: whatever a local peer writes into the position words of the bulk pipes
// (its tail in the pipe towards this rank, its head in the pipe from it) between this
// rank's reads and writes, the pipes never read or write outside their regions or a
// receive buffer, never take more bytes than were waiting or overwrite bytes not yet read
// when the positions are consistent, finish every pump, and deliver exactly what the peer
// wrote; positions that break head <= tail <= head + cap lose the peer instead of moving bytes.
func FuzzBulkPositions(f *testing.F) {
	f.Fuzz(runBulkPositions)
}

// TestBulkReaderDistrustsTail: a tail the peer moved backwards, or more than the capacity
// ahead, is not a count of waiting bytes; the receiver reports the peer corrupt rather than
// hand stale pipe bytes to a receive as its data. (Before the check, pumpIn copied whatever
// lay in the pipe and completed the receive; with an RTS announcing 2^62 bytes the loop ran
// inside one Poll for 2^62/chunk iterations, so the driver never returned.)
func TestBulkReaderDistrustsTail(t *testing.T) {
	h := newHostileNode(t)
	done := &transporttest.Completion{}
	h.p.fetches = []*largeRecv{{dst: make([]byte, 64), size: 1 << 20, done: done}}
	h.p.nFetch.Store(1)
	h.bw.tail.Store(^uint64(0)) // 2^64-1 bytes "waiting": nothing was written
	h.t.Poll()
	if calls, err := done.Result(); calls == 1 && err == nil {
		t.Fatalf("a receive of 1 MiB completed from a pipe of %d bytes that held none (reader moved to %d)", h.p.bulkR.cap, h.p.bulkR.pos)
	}
	if _, lost, _ := h.sink.state(); len(lost) != 1 || !errors.Is(lost[0], transport.ErrCorrupt) {
		t.Fatalf("lost %v, want the peer lost with ErrCorrupt", lost)
	}
}

// TestBulkWriterDistrustsHead: a head ahead of what this rank has written frees no room; the
// sender reports the peer corrupt rather than count it as space. (Before the check, pumpOut
// computed cap - (pos - head), which wraps, and streamed the payload over unread bytes.)
func TestBulkWriterDistrustsHead(t *testing.T) {
	h := newHostileNode(t)
	done := &transporttest.Completion{}
	// More than the pipe holds, so the writer must reload the head to finish.
	h.p.streams = []*largeSend{{payload: make([]byte, int(h.p.bulkW.cap)+64<<10), done: done}}
	h.br.head.Store(1 << 40) // the peer "read" a TiB it was never sent
	h.p.pumpOut()
	if h.p.bulkW.pos > h.p.bulkW.cap {
		t.Fatalf("rank 1 wrote %d bytes into a pipe of %d that its peer never read", h.p.bulkW.pos, h.p.bulkW.cap)
	}
	if calls, err := done.Result(); calls != 1 || !errors.Is(err, transport.ErrCorrupt) {
		t.Fatalf("the send completed %d times with %v, want once with ErrCorrupt", calls, err)
	}
	if _, lost, _ := h.sink.state(); len(lost) != 1 || !errors.Is(lost[0], transport.ErrCorrupt) {
		t.Fatalf("lost %v, want the peer lost with ErrCorrupt", lost)
	}
}

// TestWriteFuzzSeeds writes the seed corpora of this package's fuzz targets (beyond
// FuzzRingRecord's). It runs only with GORUN_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("GORUN_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set GORUN_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	// rec encodes a FuzzPeerRecords step writing a record of kind (an fzKinds index).
	rec := func(code byte, payload []byte) []byte {
		return append([]byte{code, byte(len(payload))}, payload...)
	}
	body := func(size, cookie uint64, proto uint8, inline []byte) []byte {
		b := make([]byte, rtsBodyLen, rtsBodyLen+len(inline))
		binary.LittleEndian.PutUint64(b, size)
		binary.LittleEndian.PutUint64(b[8:], cookie)
		b[16] = proto
		return append(b, inline...)
	}
	cookie := func(c uint64) []byte { return binary.LittleEndian.AppendUint64(nil, c) }
	bulk := func(n byte) []byte { return []byte{0xe0, n} }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	const eagerC, rtsC, ctsC, finC, padC = 1, 2, 3, 4, 5
	corpora := map[string]map[string][]byte{
		"FuzzPeerRecords": {
			"eager":               cat(rec(eagerC, []byte("hello")), rec(eagerC, nil), rec(eagerC|0x20, payloadFor(1, 40))),
			"rts-pipe-then-data":  cat(rec(rtsC, body(700, 9, protoPipe, nil)), bulk(100)),
			"rts-inline":          cat(rec(rtsC, body(5, 9, protoInline, []byte("small")))),
			"rts-cma-falls-back":  cat(rec(rtsC, body(40, 9, protoCMA, nil)), bulk(5)),
			"cts-and-fin-pending": cat(rec(ctsC, cookie(1)), rec(finC, cookie(2))),
			"cts-unknown-cookie":  cat(rec(ctsC, cookie(3))),
			"fin-twice":           cat(rec(finC, cookie(2)), rec(finC, cookie(2))),
			"rts-short-body":      cat(rec(rtsC, body(8, 9, protoPipe, nil)[:20])),
			"rts-huge":            cat(rec(rtsC, body(1<<62+1, 9, protoPipe, nil))),
			"rts-inline-mismatch": cat(rec(rtsC, body(6, 9, protoInline, []byte("small")))),
			"rts-bad-proto":       cat(rec(rtsC, body(6, 9, 7, nil))),
			"exact-pad-then-rts":  cat(rec(eagerC, []byte("x")), rec(padC, nil), rec(rtsC, body(600, 4, protoPipe, nil)), bulk(80)),
			"negative-tag":        cat(rec(eagerC|0x08, []byte("x"))),
			"unknown-kind":        cat(rec(6, []byte("x"))),
			"wrap-many":           bytes.Repeat(rec(eagerC, payloadFor(2, 100)), 40),
		},
		"FuzzBulkPositions": {
			"honest-both-ways": {2, 0, 1, 64, 0, 64, 3, 4, 8, 6, 64, 3, 4, 255, 6, 255, 5, 6, 255},
			"tail-backwards":   {2, 0, 4, 64, 0, 8, 3, 1, 0, 0xf0, 0xff, 3},
			"tail-far-ahead":   {2, 0xff, 0xff, 64, 1, 1, 0, 0, 0, 0, 0, 0, 0x10, 0, 3},
			"head-ahead":       {7, 0, 0, 0x10, 4, 255},
			"head-backwards":   {4, 64, 6, 128, 7, 0, 0, 0xfc, 4, 8, 5, 6, 255},
			"want-space":       {8, 1, 2, 16, 0, 16, 0, 64, 3},
		},
	}
	for target, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
