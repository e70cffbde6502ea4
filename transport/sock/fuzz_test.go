package sock

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/transporttest"
	"github.com/gorun-hpc/gorun/transport"
)

// Fuzz targets for what reaches a rank from outside it (STYLE rule 12): the frame stream of an
// authenticated peer (FuzzConnStream) and the handshake bytes of a stranger
// (FuzzAcceptHandshake, FuzzInitiateHandshake). Their seeds are in testdata/fuzz; the valid
// ones are written by the real frame writer (GORUN_WRITE_FUZZ_SEEDS=1 go test -run
// TestWriteFuzzSeeds ./transport/sock/ regenerates them).

const (
	fuzzEager    = 64  // the fuzzed connection's eager limit
	fuzzFetchCap = 256 // the sink fetches at most this much of a rendezvous message
	// fuzzTimeout bounds every step of one exec: a connection that has been fed its whole
	// input and its EOF must be done by then.
	fuzzTimeout = 2 * time.Second
)

// The sends pending on the fuzzed connection before the peer speaks: cookie 1 (rendezvous,
// being larger than the eager limit) and cookie 2 (synchronous). The sink's fetches get the
// receiver cookies from 3 on, in the order the RTS frames arrive.
var (
	fuzzBigSend  = pattern(100, 1)
	fuzzSyncSend = []byte("sync")
)

type fuzzMsg struct {
	env   transport.Envelope
	data  []byte // eager: the payload; rendezvous: the fetch buffer (then what should land)
	fetch *transporttest.Completion
}

// fuzzSink records deliveries and fetches every rendezvous message at once, at most
// fuzzFetchCap bytes of it, as the matching engine does with a posted receive that size.
type fuzzSink struct {
	mu   sync.Mutex
	got  []fuzzMsg
	lost []error
	bad  []string // contract violations seen inside Deliver
}

func (s *fuzzSink) Deliver(env transport.Envelope, payload []byte, rv transport.Rendezvous) {
	s.mu.Lock()
	if env.Size < 0 || rv == nil && env.Size != len(payload) {
		s.bad = append(s.bad, fmt.Sprintf("delivered %+v with %d payload bytes", env, len(payload)))
		s.mu.Unlock()
		return
	}
	m := fuzzMsg{env: env}
	if rv == nil {
		m.data = bytes.Clone(payload)
	} else {
		m.data = make([]byte, min(env.Size, fuzzFetchCap))
		m.fetch = &transporttest.Completion{}
	}
	s.got = append(s.got, m)
	s.mu.Unlock()
	if rv != nil {
		rv.Fetch(m.data, m.fetch)
	}
}

func (s *fuzzSink) Lost(peer int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if peer != 1 {
		s.bad = append(s.bad, fmt.Sprintf("lost rank %d, the connection is to rank 1", peer))
	}
	s.lost = append(s.lost, err)
}

// socketPair returns the two ends of a connected Unix stream socket pair.
func socketPair(tb testing.TB) (a, b *net.UnixConn) {
	tb.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		nc, err := net.FileConn(f) // a duplicate of fd
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
		conns[i] = nc.(*net.UnixConn)
	}
	return conns[0], conns[1]
}

// connEnd is how the model says a stream ends.
type connEnd int

const (
	endEOF     connEnd = iota // the input runs out, perhaps mid-frame: the peer is lost
	endCorrupt                // a frame breaks the protocol: the peer is lost with ErrCorrupt
	endBye                    // an orderly goodbye: nothing is lost
)

func (e connEnd) String() string { return [...]string{"eof", "corrupt", "bye"}[e] }

// connExpect is what the model predicts a stream does to the connection.
type connExpect struct {
	msgs    []fuzzMsg // in delivery order; fetch nil for eager messages
	fetchOK []bool    // per message: the rendezvous fetch completes without error
	out     []outFrame
	ctsd    map[uint64]bool // pending sends (by cookie) that a CTS asked for
	end     connEnd
	reason  string
}

// modelConn predicts, frame by frame, what conn.readFrame does with stream: a reference
// reading of the protocol, independent of the connection's code but for decodeHeader.
func modelConn(stream []byte) connExpect {
	e := connExpect{ctsd: map[uint64]bool{}}
	sends := map[uint64][]byte{1: fuzzBigSend, 2: fuzzSyncSend}
	type recv struct {
		msg  int
		size uint64
	}
	recvs := map[uint64]recv{}
	cookie, seq := uint64(2), uint64(0)
	b := stream
	for {
		if len(b) < HeaderLen {
			e.end, e.reason = endEOF, fmt.Sprintf("%d bytes left", len(b))
			return e
		}
		h, err := decodeHeader(b[:HeaderLen], 1)
		b = b[HeaderLen:]
		if err != nil {
			e.end, e.reason = endCorrupt, err.Error()
			return e
		}
		switch h.Kind {
		case KindEager, KindRTS:
			seq++
			if h.Seq != seq {
				e.end, e.reason = endCorrupt, "sequence"
				return e
			}
			env := transport.Envelope{Src: 1, Ctx: h.Ctx, Tag: int(h.Tag), Size: int(h.Size)}
			if h.Kind == KindRTS {
				cookie++
				recvs[cookie] = recv{len(e.msgs), h.Size}
				e.msgs = append(e.msgs, fuzzMsg{env: env, fetch: &transporttest.Completion{}})
				e.fetchOK = append(e.fetchOK, false)
				e.out = append(e.out, outFrame{h: Header{Kind: KindCTS, Cookie: h.Cookie, Aux: cookie}})
				continue
			}
			if uint64(len(b)) < h.Len {
				e.end, e.reason = endEOF, "eager payload cut short"
				return e
			}
			e.msgs = append(e.msgs, fuzzMsg{env: env, data: b[:h.Len]})
			e.fetchOK = append(e.fetchOK, false)
			b = b[h.Len:]
		case KindCTS:
			p, ok := sends[h.Cookie]
			if !ok {
				e.end, e.reason = endCorrupt, "cts for no pending send"
				return e
			}
			delete(sends, h.Cookie)
			e.ctsd[h.Cookie] = true
			e.out = append(e.out, outFrame{h: Header{Kind: KindData, Cookie: h.Aux, Len: uint64(len(p))}, payload: p})
		case KindData:
			r, ok := recvs[h.Cookie]
			if !ok {
				e.end, e.reason = endCorrupt, "data for no pending receive"
				return e
			}
			delete(recvs, h.Cookie)
			if h.Len != r.size {
				e.end, e.reason = endCorrupt, "data size differs from the rts"
				return e
			}
			if uint64(len(b)) < h.Len {
				e.end, e.reason = endEOF, "data payload cut short"
				return e
			}
			n := min(uint64(fuzzFetchCap), h.Len)
			e.msgs[r.msg].data, e.fetchOK[r.msg] = b[:n], true
			b = b[h.Len:]
		case KindBye:
			e.end = endBye
			return e
		default:
			e.end, e.reason = endCorrupt, h.Kind.String()
			return e
		}
	}
}

// runConnStream feeds stream to an established connection to rank 1 as what rank 1 sends,
// then EOF, and checks what the connection did against the model.
func runConnStream(t *testing.T, stream []byte) {
	want := modelConn(stream)
	local, remote := socketPair(t)
	defer remote.Close()
	sink := &fuzzSink{}
	c := newConn(local, 0, 1, sink, fuzzEager)

	output := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(remote) // until the connection shuts its end
		output <- b
	}()
	var big, syn transporttest.Completion
	c.Send(transport.Envelope{Src: 0, Ctx: 1, Tag: 1, Size: len(fuzzBigSend)}, fuzzBigSend, false, &big)
	c.Send(transport.Envelope{Src: 0, Ctx: 1, Tag: 2, Size: len(fuzzSyncSend)}, fuzzSyncSend, true, &syn)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	c.start(&wg)
	written := make(chan struct{})
	go func() {
		defer close(written)
		remote.Write(stream) // fails once the connection gave up and shut its end
		remote.CloseWrite()
	}()
	stuck := func(what string) {
		local.Close()
		remote.Close()
		t.Fatalf("%s within %v (model: %v, %s)", what, fuzzTimeout, want.end, want.reason)
	}
	timer := time.NewTimer(fuzzTimeout)
	defer timer.Stop()
	select {
	case <-c.readerDone:
	case <-timer.C:
		stuck("reader did not end")
	}
	c.shutdown() // after a Bye the connection stays open for this side's own
	for _, ch := range []chan struct{}{c.done, written} {
		select {
		case <-ch:
		case <-timer.C:
			stuck("goroutines did not end")
		}
	}
	wg.Wait()
	var out []byte
	select {
	case out = <-output:
	case <-timer.C:
		stuck("connection did not shut its socket")
	}
	runtime.ReadMemStats(&after)

	// Nothing is allocated by a length the peer chose beyond the frame limits: the eager
	// scratch grows to at most MaxEager, everything else is in proportion to the input.
	if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(2*transport.MaxEager+64*len(stream)+1<<20); alloc > limit {
		t.Errorf("allocated %d bytes for a %d-byte stream (bound %d)", alloc, len(stream), limit)
	}

	sink.mu.Lock()
	got, lost, bad := sink.got, sink.lost, sink.bad
	sink.mu.Unlock()
	for _, s := range bad {
		t.Error(s)
	}
	switch {
	case want.end == endBye && len(lost) != 0:
		t.Errorf("orderly goodbye reported losses: %v", lost)
	case want.end != endBye && len(lost) != 1:
		t.Errorf("stream ending by %v (%s): %d losses %v, want exactly one", want.end, want.reason, len(lost), lost)
	case want.end == endCorrupt && !errors.Is(lost[0], transport.ErrCorrupt):
		t.Errorf("stream ending by %v (%s): lost with %v, want ErrCorrupt", want.end, want.reason, lost[0])
	case want.end == endEOF && !errors.Is(lost[0], io.EOF) && !errors.Is(lost[0], io.ErrUnexpectedEOF):
		t.Errorf("stream cut short (%s): lost with %v, want EOF", want.reason, lost[0])
	}

	if len(got) != len(want.msgs) {
		t.Fatalf("%d messages delivered, the model says %d (end: %v, %s)", len(got), len(want.msgs), want.end, want.reason)
	}
	for i, m := range got {
		w := want.msgs[i]
		if m.env != w.env || (m.fetch == nil) != (w.fetch == nil) {
			t.Fatalf("message %d: %+v (rendezvous %v), want %+v (rendezvous %v)", i, m.env, m.fetch != nil, w.env, w.fetch != nil)
		}
		if m.fetch == nil {
			if !bytes.Equal(m.data, w.data) {
				t.Fatalf("eager message %d: payload differs", i)
			}
			continue
		}
		calls, err := m.fetch.Result()
		switch {
		case calls != 1:
			t.Errorf("fetch of message %d completed %d times", i, calls)
		case want.fetchOK[i] && err != nil:
			t.Errorf("fetch of message %d failed: %v", i, err)
		case !want.fetchOK[i] && err == nil:
			t.Errorf("fetch of message %d succeeded without its data", i)
		case want.fetchOK[i] && !bytes.Equal(m.data[:len(w.data)], w.data):
			t.Errorf("fetch of message %d: data differs", i)
		}
	}

	// What the connection wrote: its two RTS, then a prefix of the CTS and DATA frames the
	// model expects (frames still queued when it shut may be dropped, with an error).
	frames, err := readFrames(out)
	if err != nil {
		t.Fatalf("connection wrote a bad frame: %v", err)
	}
	if len(frames) < 2 || frames[0].h.Kind != KindRTS || frames[0].h.Cookie != 1 || frames[0].h.Seq != 1 ||
		frames[1].h.Kind != KindRTS || frames[1].h.Cookie != 2 || frames[1].h.Seq != 2 {
		t.Fatalf("connection did not begin with its two RTS: %+v", frames)
	}
	frames = frames[2:]
	if len(frames) > len(want.out) {
		t.Fatalf("connection wrote %d frames after its RTS, the model expects at most %d", len(frames), len(want.out))
	}
	wroteData := map[uint64]bool{} // by the send's cookie
	for i, f := range frames {
		w := want.out[i]
		if f.h.Kind != w.h.Kind || f.h.Cookie != w.h.Cookie || f.h.Aux != w.h.Aux || !bytes.Equal(f.payload, w.payload) {
			t.Fatalf("frame %d written: %+v, want %+v", i, f.h, w.h)
		}
		if f.h.Kind == KindData {
			if bytes.Equal(f.payload, fuzzBigSend) {
				wroteData[1] = true
			} else {
				wroteData[2] = true
			}
		}
	}
	for cookie, s := range map[uint64]*transporttest.Completion{1: &big, 2: &syn} {
		calls, err := s.Result()
		switch {
		case calls != 1:
			t.Errorf("send %d (cts: %v, data written: %v, end: %v) completed %d times, want once",
				cookie, want.ctsd[cookie], wroteData[cookie], want.end, calls)
		case err == nil && !wroteData[cookie]:
			t.Errorf("send %d completed without error, but its data was never written", cookie)
		}
	}
}

// TestQueuedFrameCompletesWhenWriterStops: a frame the reader queued for the writer
// goroutine (the DATA a CTS asks for) must complete, with an error if it cannot be written,
// even when the connection shuts before the writer goroutine took it. writeLoop used to pick
// between the pending kick and the closed stop at random, and on stop return leaving the
// frame queued and writing set: the send never completed, and every later frame (the Bye of
// close) queued behind it for good.
func TestQueuedFrameCompletesWhenWriterStops(t *testing.T) {
	for i := range 64 {
		local, remote := socketPair(t)
		c := newConn(local, 0, 1, &fuzzSink{}, fuzzEager)
		var sent transporttest.Completion
		// As the reader does for a CTS: queue the DATA and kick the writer goroutine, which
		// has not reached its select yet; then the connection fails and shuts.
		c.submit(outFrame{h: Header{Kind: KindData, Src: 0, Cookie: 3, Len: 4}, payload: []byte("data"), c: &sent}, false)
		c.shutdown()
		c.writeLoop()
		remote.Close()
		if calls, err := sent.Result(); calls != 1 {
			t.Fatalf("try %d: the queued DATA frame completed %d times (err %v), want once", i, calls, err)
		}
	}
}

type wireFrame struct {
	h       Header
	payload []byte
}

// readFrames splits what the connection wrote into frames (a cut-off last frame is dropped).
func readFrames(b []byte) ([]wireFrame, error) {
	var frames []wireFrame
	for len(b) >= HeaderLen {
		h, err := decodeHeader(b, 0)
		if err != nil {
			return frames, err
		}
		b = b[HeaderLen:]
		if uint64(len(b)) < h.Len {
			break
		}
		frames = append(frames, wireFrame{h, b[:h.Len]})
		b = b[h.Len:]
	}
	return frames, nil
}

// FuzzConnStream: whatever an authenticated peer sends, the connection never panics, never
// allocates by a length beyond the frame limits, does what a reference reading of the
// protocol says (deliveries, fetched data, frames written back), ends in exactly one loss
// (ErrCorrupt, or EOF for a stream cut short) unless the peer said Bye, completes every send
// and fetch exactly once, and its goroutines end.
func FuzzConnStream(f *testing.F) {
	f.Fuzz(runConnStream)
}

// bufConn is a net.Conn that only collects what is written to it: it lets the real frame
// writer (conn.writeFrame) build seed streams.
type bufConn struct {
	net.Conn // nil: only Write is called
	buf      bytes.Buffer
}

func (b *bufConn) Write(p []byte) (int, error) { return b.buf.Write(p) }

// frames encodes what rank 1 would send, with the real writer.
func seedFrames(fs ...outFrame) []byte {
	var bc bufConn
	w := &conn{nc: &bc}
	for i := range fs {
		fs[i].h.Src = 1
		w.writeFrame(&fs[i])
	}
	return bc.buf.Bytes()
}

func seedEager(seq uint64, tag int32, p []byte) outFrame {
	return outFrame{h: Header{Kind: KindEager, Seq: seq, Tag: tag, Ctx: 1, Len: uint64(len(p)), Size: uint64(len(p))}, payload: p}
}

func seedRTS(seq, size, cookie uint64) outFrame {
	return outFrame{h: Header{Kind: KindRTS, Seq: seq, Tag: 9, Ctx: 1, Size: size, Cookie: cookie}}
}

func seedCtrl(kind Kind, cookie, aux uint64) outFrame {
	return outFrame{h: Header{Kind: kind, Cookie: cookie, Aux: aux}}
}

func seedData(cookie uint64, p []byte) outFrame {
	return outFrame{h: Header{Kind: KindData, Cookie: cookie, Len: uint64(len(p))}, payload: p}
}

var seedBye = seedCtrl(KindBye, 0, 0)

// connSeeds are FuzzConnStream's seeds: valid streams, then corrupt variants of them.
func connSeeds() map[string][]byte {
	hdrOnly := func(f outFrame) []byte { return seedFrames(f)[:HeaderLen] }
	return map[string][]byte{
		"eager-then-bye":        seedFrames(seedEager(1, 0, nil), seedEager(2, 1, []byte("hello")), seedEager(3, 2, pattern(200, 3)), seedBye),
		"rts-fetched-then-data": seedFrames(seedRTS(1, 300, 7), seedData(3, pattern(300, 4)), seedEager(2, 0, []byte("after")), seedBye),
		"cts-for-pending-sends": seedFrames(seedCtrl(KindCTS, 1, 11), seedCtrl(KindCTS, 2, 12), seedBye),
		"bye":                   seedFrames(seedBye),
		"eof-between-frames":    seedFrames(seedEager(1, 0, []byte("x"))),
		"eager-cut-short":       seedFrames(seedEager(1, 0, pattern(50, 5)))[:HeaderLen+10],
		"eager-max-unfunded":    hdrOnly(seedEager(1, 0, make([]byte, transport.MaxEager))),
		"sequence-gap":          seedFrames(seedEager(1, 0, nil), seedEager(3, 0, nil)),
		"cts-twice":             seedFrames(seedCtrl(KindCTS, 1, 11), seedCtrl(KindCTS, 1, 11)),
		"cts-unknown-cookie":    seedFrames(seedCtrl(KindCTS, 9, 11)),
		"data-wrong-size":       seedFrames(seedRTS(1, 300, 7), seedData(3, pattern(299, 4))),
		"data-unknown-cookie":   seedFrames(seedData(4, []byte("junk"))),
		"unassigned-kind":       seedFrames(seedCtrl(5, 1, 0)), // 5 was FIN, which nothing sent
		"rts-huge-data-short":   append(hdrOnly(seedRTS(1, 1<<40, 7)), hdrOnly(seedData(3, make([]byte, 1<<20)))...),
		"cts-then-corrupt":      append(seedFrames(seedCtrl(KindCTS, 1, 11)), make([]byte, HeaderLen)...),
		"bad-magic":             make([]byte, HeaderLen),
	}
}

// The handshake from a stranger's side. Both targets take a mode byte first:
//
//	0  a stranger: the rest goes on the wire as it is
//	1  a holder of the job key whose messages the rest corrupts: it computes its MAC
//	   properly and XORs it with the 32 bytes after its own fields; it must succeed
//	   exactly when nothing is flipped (and, for accept, its hello is acceptable)
//	2  the same with the wrong key: it must never succeed

// probeConn checks the bounds the handshake keeps on a connection: a deadline set before
// the first read, and how many bytes it reads.
type probeConn struct {
	net.Conn
	mu       sync.Mutex
	deadline time.Time
	read     int
	early    bool // a read came before any deadline
}

func (p *probeConn) SetDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	p.mu.Unlock()
	return p.Conn.SetDeadline(t)
}

func (p *probeConn) Read(b []byte) (int, error) {
	p.mu.Lock()
	if p.deadline.IsZero() || time.Until(p.deadline) > handshakeTimeout {
		p.early = true
	}
	p.mu.Unlock()
	n, err := p.Conn.Read(b)
	p.mu.Lock()
	p.read += n
	p.mu.Unlock()
	return n, err
}

var wrongKey = []byte("0123456789abcdef0123456789abcdeF")

func xorInto(dst, mask []byte) {
	for i := range min(len(dst), len(mask)) {
		dst[i] ^= mask[i]
	}
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// runHandshake runs side (the code under test) on one end of a socket pair and peer (the
// fuzzed stranger) on the other, bounding the time, and returns side's error and its probe.
// peer half-closes its end once it has said everything (so that side, still waiting for
// bytes, sees EOF), then reads until side has closed its end.
func runHandshake(t *testing.T, side func(net.Conn) error, peer func(*net.UnixConn)) (error, *probeConn) {
	a, b := socketPair(t)
	pc := &probeConn{Conn: a}
	errc := make(chan error, 1)
	go func() {
		err := side(pc)
		a.Close()
		errc <- err
	}()
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		peer(b)
		b.CloseWrite()
		io.Copy(io.Discard, b)
	}()
	timer := time.NewTimer(fuzzTimeout)
	defer timer.Stop()
	defer b.Close()
	var err error
	select {
	case err = <-errc:
	case <-timer.C:
		a.Close()
		b.Close()
		t.Fatalf("handshake did not end within %v", fuzzTimeout)
	}
	select {
	case <-peerDone:
	case <-timer.C:
		b.Close()
		t.Fatalf("stranger's side did not end within %v", fuzzTimeout)
	}
	return err, pc
}

// FuzzAcceptHandshake: whatever a stranger sends to the acceptor, accepting never panics,
// reads at most a hello and a proof, under a deadline, and succeeds only for a key holder
// whose messages are intact.
func FuzzAcceptHandshake(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		mode := byte(0)
		if len(in) > 0 {
			mode, in = in[0]%3, in[1:]
		}
		helloOK := len(in) >= helloLen && string(in[:8]) == handshakeMagic &&
			string(in[8:16]) == "\x01\x00\x00\x00\x00\x00\x00\x00" // from 1, to 0
		var answerOK bool
		expectedCalls := 0
		err, pc := runHandshake(t, func(c net.Conn) error {
			from, err := acceptHandshake(c, testKey, 0, func(r int) bool { expectedCalls++; return r == 1 })
			if err == nil && from != 1 {
				return fmt.Errorf("accepted as rank %d", from)
			}
			return err
		}, func(c *net.UnixConn) {
			if mode == 0 || len(in) < helloLen {
				c.Write(in)
				return
			}
			key := testKey
			if mode == 2 {
				key = wrongKey
			}
			hello := in[:helloLen]
			if _, err := c.Write(hello); err != nil {
				return
			}
			answer := make([]byte, nonceLen+macLen)
			if _, err := io.ReadFull(c, answer); err != nil {
				return // refused after the hello
			}
			answerOK = hmac.Equal(answer[nonceLen:], mac(testKey, "accept", hello, answer[:nonceLen]))
			proof := mac(key, "initiate", hello, answer[:nonceLen])
			mask := in[helloLen:]
			xorInto(proof, mask)
			c.Write(proof[:min(len(proof), len(mask))])
		})
		if pc.early {
			t.Error("accept read before setting a deadline")
		}
		if pc.read > helloLen+macLen {
			t.Errorf("accept read %d bytes, more than a hello and a proof", pc.read)
		}
		if expectedCalls > 1 {
			t.Errorf("expected() called %d times", expectedCalls)
		}
		succeed := mode == 1 && helloOK && len(in) >= helloLen+macLen && allZero(in[helloLen:helloLen+macLen])
		switch {
		case succeed && err != nil:
			t.Fatalf("a key holder's intact handshake failed: %v", err)
		case !succeed && err == nil:
			t.Fatalf("accepted a handshake (mode %d) that should have failed", mode)
		case err != nil && !errors.Is(err, ErrAuth):
			t.Fatalf("handshake failed with %v, want ErrAuth", err)
		case mode != 0 && helloOK && !answerOK:
			t.Fatal("the acceptor's answer does not prove the key")
		}
	})
}

// FuzzInitiateHandshake: whatever a stranger answers, initiating never panics, reads at most
// an answer, under a deadline, and succeeds only against a key holder whose answer is intact.
func FuzzInitiateHandshake(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		mode := byte(0)
		if len(in) > 0 {
			mode, in = in[0]%3, in[1:]
		}
		var hello []byte
		proofOK := false
		err, pc := runHandshake(t, func(c net.Conn) error {
			return initiate(c, testKey, 1, 0)
		}, func(c *net.UnixConn) {
			hello = make([]byte, helloLen)
			if _, err := io.ReadFull(c, hello); err != nil {
				hello = nil
				return
			}
			if mode == 0 {
				c.Write(in)
				return
			}
			key := testKey
			if mode == 2 {
				key = wrongKey
			}
			if len(in) < nonceLen {
				c.Write(in)
				return
			}
			nonceA := in[:nonceLen]
			answer := append(append([]byte(nil), nonceA...), mac(key, "accept", hello, nonceA)...)
			mask := in[nonceLen:]
			xorInto(answer[nonceLen:], mask)
			if _, err := c.Write(answer[:nonceLen+min(macLen, len(mask))]); err != nil {
				return
			}
			c.CloseWrite()
			proof := make([]byte, macLen)
			if _, err := io.ReadFull(c, proof); err == nil {
				proofOK = hmac.Equal(proof, mac(testKey, "initiate", hello, nonceA))
			}
		})
		if hello == nil || string(hello[:8]) != handshakeMagic || string(hello[8:16]) != "\x01\x00\x00\x00\x00\x00\x00\x00" {
			t.Fatalf("initiator's hello %x", hello)
		}
		if pc.early {
			t.Error("initiate read before setting a deadline")
		}
		if pc.read > nonceLen+macLen {
			t.Errorf("initiate read %d bytes, more than an answer", pc.read)
		}
		succeed := mode == 1 && len(in) >= nonceLen+macLen && allZero(in[nonceLen:nonceLen+macLen])
		switch {
		case succeed && err != nil:
			t.Fatalf("handshake with an intact key holder failed: %v", err)
		case succeed && !proofOK:
			t.Fatal("the initiator's proof does not prove the key")
		case !succeed && err == nil:
			t.Fatalf("initiated a handshake (mode %d) that should have failed", mode)
		case err != nil && !errors.Is(err, ErrAuth):
			t.Fatalf("handshake failed with %v, want ErrAuth", err)
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora of this package's fuzz targets from the real
// frame writer. It runs only with GORUN_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("GORUN_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set GORUN_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	hello := func(magic string, from, to byte) []byte {
		h := make([]byte, helloLen)
		copy(h, magic)
		h[8], h[12] = from, to
		for i := 16; i < helloLen; i++ {
			h[i] = byte(i)
		}
		return h
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	corpora := map[string]map[string][]byte{
		"FuzzConnStream": connSeeds(),
		"FuzzAcceptHandshake": {
			"stranger-hello-junk-proof": cat([]byte{0}, hello(handshakeMagic, 1, 0), bytes.Repeat([]byte{0xa5}, macLen)),
			"stranger-not-gorun":        cat([]byte{0}, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
			"stranger-to-other-rank":    cat([]byte{0}, hello(handshakeMagic, 1, 3)),
			"stranger-unexpected-rank":  cat([]byte{0}, hello(handshakeMagic, 7, 0)),
			"stranger-short-hello":      cat([]byte{0}, hello(handshakeMagic, 1, 0)[:20]),
			"key-holder-intact":         cat([]byte{1}, hello(handshakeMagic, 1, 0), make([]byte, macLen)),
			"key-holder-one-bit":        cat([]byte{1}, hello(handshakeMagic, 1, 0), []byte{1}, make([]byte, macLen-1)),
			"key-holder-short-proof":    cat([]byte{1}, hello(handshakeMagic, 1, 0), make([]byte, 8)),
			"wrong-key":                 cat([]byte{2}, hello(handshakeMagic, 1, 0), make([]byte, macLen)),
		},
		"FuzzInitiateHandshake": {
			"stranger-junk-answer":   cat([]byte{0}, bytes.Repeat([]byte{0x5a}, nonceLen+macLen)),
			"stranger-short-answer":  cat([]byte{0}, []byte("no")),
			"key-holder-intact":      cat([]byte{1}, bytes.Repeat([]byte{7}, nonceLen), make([]byte, macLen)),
			"key-holder-flipped-mac": cat([]byte{1}, bytes.Repeat([]byte{7}, nonceLen), []byte{0, 0, 0x80}, make([]byte, macLen-3)),
			"key-holder-short-mac":   cat([]byte{1}, bytes.Repeat([]byte{7}, nonceLen), make([]byte, 4)),
			"wrong-key":              cat([]byte{2}, bytes.Repeat([]byte{7}, nonceLen), make([]byte, macLen)),
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
