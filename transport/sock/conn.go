package sock

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/transport"
)

// conn is the connection to one peer. It implements transport.Endpoint.
//
// Writing: frames are written by whichever goroutine finds the connection idle (a sender
// writes its own frame directly: the fast path), otherwise they queue and the goroutine that
// is writing drains the queue. The reader never writes: the frames it must send (CTS, and the
// data a CTS asks for) are queued and handed to the connection's writer goroutine. So a reader
// is never blocked by a full send buffer, and a peer's writes always drain: two ranks streaming
// large messages at each other cannot deadlock.
//
// Locks: qmu and mu are never held together, nor while calling into the Sink or a Completion.
type conn struct {
	peer int
	nc   net.Conn
	sink transport.Sink
	self int32
	// eagerLimit: messages up to this size go eagerly; larger ones by rendezvous.
	eagerLimit int

	// qmu guards the send queue.
	qmu     sync.Mutex
	writing bool       // some goroutine is the writer; frames queued now will be written by it
	queue   []outFrame // frames waiting for the writer, in sequence order, from qhead on
	qhead   int        // queue[:qhead] are written; the array is reused, so a steady stream allocates nothing
	sendSeq uint64     // sequence number of the last Eager/RTS frame queued
	werr    error      // first write failure; all later sends fail with it
	sent    transport.Counters

	kick chan struct{} // wakes the writer goroutine (capacity 1)

	// Owned by the current writer (the goroutine that set writing).
	hdr  [HeaderLen]byte
	iov  [2][]byte
	bufs net.Buffers

	// mu guards the rendezvous tables and the failure state.
	mu         sync.Mutex
	nextCookie uint64
	sends      map[uint64]*pendingSend // by sender cookie: awaiting CTS
	recvs      map[uint64]*pendingRecv // by receiver cookie: awaiting DATA
	failed     error                   // set once; every pending operation got it
	closing    bool                    // close has started: EOF is expected, not a loss

	// Reader state, owned by the reader goroutine.
	recvSeq uint64
	rhdr    [HeaderLen]byte
	scratch []byte

	readerDone chan struct{} // closed when the reader goroutine exits
	stop       chan struct{} // closed by shutdown: the writer goroutine exits
	stopOnce   sync.Once
	done       chan struct{} // closed when the reader and writer goroutines have exited
}

// What the connection's types are used as. A Net hands out a *conn as a transport.Endpoint;
// the rank finds transport.Counted on an endpoint by a run-time type assertion, so this is
// what keeps a changed Sent from silently dropping the counts.
var (
	_ transport.Endpoint   = (*conn)(nil)
	_ transport.Counted    = (*conn)(nil)
	_ transport.Rendezvous = (*rendezvous)(nil)
	_ transport.Completion = chanCompletion(nil)
)

type outFrame struct {
	h       Header
	payload []byte
	c       transport.Completion // told once the frame is written (nil: nothing to tell)
}

type pendingSend struct {
	payload []byte
	c       transport.Completion
}

type pendingRecv struct {
	dst  []byte
	size uint64
	c    transport.Completion
}

func newConn(nc net.Conn, self, peer int, sink transport.Sink, eagerLimit int) *conn {
	c := &conn{
		peer:       peer,
		nc:         nc,
		sink:       sink,
		self:       int32(self),
		eagerLimit: eagerLimit,
		kick:       make(chan struct{}, 1),
		sends:      make(map[uint64]*pendingSend),
		recvs:      make(map[uint64]*pendingRecv),
		scratch:    make([]byte, eagerLimit),
		readerDone: make(chan struct{}),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	return c
}

// start launches the reader and writer goroutines; both exit when the connection fails or
// closes, and done is closed after both have.
func (c *conn) start(wg *sync.WaitGroup) {
	var inner sync.WaitGroup
	inner.Add(2)
	go func() { defer inner.Done(); c.readLoop() }()
	go func() { defer inner.Done(); c.writeLoop() }()
	wg.Add(1)
	go func() { defer wg.Done(); inner.Wait(); close(c.done) }()
}

// Send implements transport.Endpoint.
func (c *conn) Send(env transport.Envelope, payload []byte, sync bool, comp transport.Completion) {
	h := Header{Ctx: env.Ctx, Src: c.self, Tag: int32(env.Tag), Size: uint64(len(payload))}
	if !sync && len(payload) <= c.eagerLimit {
		h.Kind, h.Len = KindEager, uint64(len(payload))
		c.submit(outFrame{h: h, payload: payload, c: comp}, true)
		return
	}
	c.mu.Lock()
	if err := c.failed; err != nil {
		c.mu.Unlock()
		comp.Complete(err)
		return
	}
	c.nextCookie++
	cookie := c.nextCookie
	c.sends[cookie] = &pendingSend{payload: payload, c: comp}
	c.mu.Unlock()
	h.Kind, h.Cookie = KindRTS, cookie
	c.submit(outFrame{h: h}, true)
}

// submit queues f. If write is set and no goroutine is writing, the caller becomes the writer
// and writes f (and whatever queues meanwhile) itself; otherwise the writer goroutine does.
func (c *conn) submit(f outFrame, write bool) {
	c.qmu.Lock()
	if c.werr != nil {
		err := c.werr
		c.qmu.Unlock()
		if f.c != nil {
			f.c.Complete(err)
		}
		return
	}
	if f.h.Kind == KindEager || f.h.Kind == KindRTS {
		c.sendSeq++
		f.h.Seq = c.sendSeq
		c.sent.Messages++
		c.sent.Bytes += f.h.Size
	}
	c.queue = append(c.queue, f)
	if c.writing {
		c.qmu.Unlock()
		return
	}
	c.writing = true
	c.qmu.Unlock()
	if write {
		c.drain()
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Sent implements transport.Counted.
func (c *conn) Sent() transport.Counters {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.sent
}

// drain writes queued frames until the queue is empty. Only the goroutine that set writing
// calls it; it clears writing when it leaves. No lock is held while writing, so queueing never
// waits for the network.
func (c *conn) drain() {
	for {
		c.qmu.Lock()
		if c.qhead == len(c.queue) || c.werr != nil {
			var failed []outFrame
			if c.werr != nil {
				failed = append(failed, c.queue[c.qhead:]...)
			}
			clear(c.queue)
			c.queue, c.qhead = c.queue[:0], 0
			c.writing = false
			werr := c.werr
			c.qmu.Unlock()
			for _, f := range failed {
				if f.c != nil {
					f.c.Complete(werr)
				}
			}
			if werr != nil {
				c.fail(werr, true)
			}
			return
		}
		f := c.queue[c.qhead]
		c.queue[c.qhead] = outFrame{}
		c.qhead++
		c.qmu.Unlock()
		err := c.writeFrame(&f)
		if err != nil {
			err = fmt.Errorf("write to rank %d: %w", c.peer, err)
			c.qmu.Lock()
			if c.werr == nil {
				c.werr = err
			}
			c.qmu.Unlock()
		}
		if f.c != nil {
			f.c.Complete(err)
		}
	}
}

// writeFrame writes header and payload with one vectored write. Only the writer calls it.
func (c *conn) writeFrame(f *outFrame) error {
	f.h.Put(c.hdr[:])
	c.iov[0], c.iov[1] = c.hdr[:], f.payload
	c.bufs = c.iov[:]
	if len(f.payload) == 0 {
		c.bufs = c.iov[:1]
	}
	_, err := c.bufs.WriteTo(c.nc)
	c.iov[1] = nil
	return err
}

// writeLoop is the writer goroutine: it drains frames queued by goroutines that must not
// write themselves (the reader). It exits when the connection is done.
//
// A kick and stop can both be ready (the reader queued a DATA frame and the connection then
// shut): the select may pick stop, so before it returns it drains what a kick left queued,
// or that frame's send would never complete and everything queued after it would wait for
// good. drain fails the frames if the socket is closed.
func (c *conn) writeLoop() {
	for {
		select {
		case <-c.kick:
		case <-c.stop:
			select {
			case <-c.kick:
				c.drain()
			default:
			}
			return
		}
		c.drain()
	}
}

// fail records the connection's end: every pending operation completes with err. If lost is
// set the peer is reported lost and the connection shut; after an orderly Bye the connection
// stays open so that this side can still say its own Bye.
func (c *conn) fail(err error, lost bool) {
	c.mu.Lock()
	if c.failed != nil {
		c.mu.Unlock()
		return
	}
	c.failed = err
	lost = lost && !c.closing
	sends, recvs := c.sends, c.recvs
	c.sends, c.recvs = map[uint64]*pendingSend{}, map[uint64]*pendingRecv{}
	c.mu.Unlock()
	if lost {
		c.shutdown()
	}
	for _, s := range sends {
		s.c.Complete(err)
	}
	for _, r := range recvs {
		r.c.Complete(err)
	}
	if lost {
		c.sink.Lost(c.peer, err)
	}
}

// shutdown closes the socket (unblocking the reader and any writer) and stops the writer
// goroutine. It is idempotent.
func (c *conn) shutdown() {
	c.stopOnce.Do(func() {
		c.nc.Close()
		close(c.stop)
	})
}

var (
	errBye = errors.New("peer closed the connection in order")
	// errPeerClosed ends what is still pending once the peer said Bye. Only a rank's Close
	// sends Bye, after its final barrier, which every rank has then entered: the job is
	// closing, so pending operations end as closed, not as lost.
	errPeerClosed = fmt.Errorf("peer has closed: %w", transport.ErrClosed)
)

// readLoop is the reader goroutine: it reads frames until the connection ends.
func (c *conn) readLoop() {
	defer close(c.readerDone)
	for {
		err := c.readFrame()
		if err == nil {
			continue
		}
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		switch {
		case errors.Is(err, errBye):
			c.fail(fmt.Errorf("rank %d: %w", c.peer, errPeerClosed), false)
		case closing:
			c.fail(fmt.Errorf("connection to rank %d: %w", c.peer, transport.ErrClosed), false)
		default:
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("connection to rank %d lost: %w", c.peer, err)
			}
			c.fail(err, true)
		}
		return
	}
}

// readFrame reads and acts on one frame. Every header is validated before anything is
// allocated or written; a frame that breaks the protocol ends the connection.
func (c *conn) readFrame() error {
	if _, err := io.ReadFull(c.nc, c.rhdr[:]); err != nil {
		return err
	}
	h, err := decodeHeader(c.rhdr[:], c.peer)
	if err != nil {
		return err
	}
	switch h.Kind {
	case KindEager, KindRTS:
		c.recvSeq++
		if h.Seq != c.recvSeq {
			return c.corrupt("sequence number %d, expected %d", h.Seq, c.recvSeq)
		}
		env := transport.Envelope{Src: c.peer, Ctx: h.Ctx, Tag: int(h.Tag), Size: int(h.Size)}
		if h.Kind == KindRTS {
			c.sink.Deliver(env, nil, &rendezvous{c: c, cookie: h.Cookie, size: h.Size})
			return nil
		}
		if int(h.Len) > len(c.scratch) { // the sender's eager limit is larger than ours
			c.scratch = make([]byte, h.Len)
		}
		p := c.scratch[:h.Len]
		if _, err := io.ReadFull(c.nc, p); err != nil {
			return err
		}
		c.sink.Deliver(env, p, nil)
	case KindCTS:
		c.mu.Lock()
		s := c.sends[h.Cookie]
		delete(c.sends, h.Cookie)
		c.mu.Unlock()
		if s == nil {
			return c.corrupt("cts for unknown send %d", h.Cookie)
		}
		data := Header{Kind: KindData, Src: c.self, Cookie: h.Aux, Len: uint64(len(s.payload))}
		c.submit(outFrame{h: data, payload: s.payload, c: s.c}, false)
	case KindData:
		c.mu.Lock()
		r := c.recvs[h.Cookie]
		delete(c.recvs, h.Cookie)
		c.mu.Unlock()
		if r == nil {
			return c.corrupt("data for unknown receive %d", h.Cookie)
		}
		if h.Len != r.size {
			r.c.Complete(c.corrupt("data of %d bytes for a message of %d", h.Len, r.size))
			return c.corrupt("data of %d bytes for a message of %d", h.Len, r.size)
		}
		n := min(uint64(len(r.dst)), h.Len)
		if _, err := io.ReadFull(c.nc, r.dst[:n]); err != nil {
			r.c.Complete(err)
			return err
		}
		if rest := int64(h.Len - n); rest > 0 { // truncated receive: drop what does not fit
			if _, err := io.CopyN(io.Discard, c.nc, rest); err != nil {
				r.c.Complete(err)
				return err
			}
		}
		r.c.Complete(nil)
	case KindBye:
		return errBye
	default:
		return c.corrupt("unexpected %v frame", h.Kind)
	}
	return nil
}

func (c *conn) corrupt(format string, args ...any) error {
	return &transport.CorruptError{Peer: c.peer, Reason: fmt.Sprintf(format, args...)}
}

// rendezvous is an announced large message; Fetch asks the sender for the data (CTS) and the
// reader puts the DATA frame straight into dst.
type rendezvous struct {
	c      *conn
	cookie uint64 // the sender's
	size   uint64
}

func (r *rendezvous) Fetch(dst []byte, comp transport.Completion) {
	c := r.c
	c.mu.Lock()
	if err := c.failed; err != nil {
		c.mu.Unlock()
		comp.Complete(err)
		return
	}
	c.nextCookie++
	mine := c.nextCookie
	c.recvs[mine] = &pendingRecv{dst: dst, size: r.size, c: comp}
	c.mu.Unlock()
	c.submit(outFrame{h: Header{Kind: KindCTS, Src: c.self, Cookie: r.cookie, Aux: mine}}, false)
}

// close ends the connection in order: it queues Bye after everything already queued, waits
// for it to be written and for the peer's Bye (or EOF), then shuts the socket.
func (c *conn) close(timeout time.Duration) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	written := make(chanCompletion, 1)
	c.submit(outFrame{h: Header{Kind: KindBye, Src: c.self}, c: written}, true)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-written:
		if hc, ok := c.nc.(interface{ CloseWrite() error }); ok {
			hc.CloseWrite()
		}
		select {
		case <-c.readerDone:
		case <-timer.C:
		}
	case <-timer.C:
	}
	c.shutdown()
	<-c.done
}

// chanCompletion reports completion on a channel.
type chanCompletion chan error

func (ch chanCompletion) Complete(err error) { ch <- err }
