package memtransport

import (
	"errors"
	"sync"

	"github.com/gorun-hpc/gorun/transport"
)

// The types rank sees through transport's interfaces.
var (
	_ transport.Endpoint   = (*pair)(nil)
	_ transport.Counted    = (*pair)(nil)
	_ transport.Rendezvous = (*rendezvous)(nil)
	_ transport.Poller     = (*Port)(nil)
)

// pair is the one-way wire from rank src to rank dst: what src has sent and dst has not yet
// taken, in send order, and the rendezvous messages src has announced to dst that have not
// finished. It is src's endpoint to dst.
//
// Only one goroutine drains a pair at a time: dst's reader for it (pushed mode), or dst's
// driver (polled mode, which the rank runs one at a time). So items are delivered in the
// order they were queued, which is send order.
type pair struct {
	net      *Network
	src, dst int

	// kick wakes the pair's reader (pushed mode) after something is queued; capacity 1.
	kick chan struct{}
	// copying counts fetches that have claimed a rendezvous and not yet called its
	// completions; fail waits for them, so a Close returns only once every completion it owes
	// has been called.
	copying sync.WaitGroup

	mu sync.Mutex
	// Guarded by mu.
	queue   []item // in flight, oldest first
	spare   []item // the drained batch's storage, for reuse
	failed  error  // once set, sends complete with it at once
	pending map[*rendezvous]struct{}
	sent    transport.Counters
}

type itemKind uint8

const (
	itemEager itemKind = iota + 1 // a whole message: env and a copy of its payload
	itemRTS                       // a rendezvous message announced: env and r
	itemFetch                     // a fetch of r asked by dst: copy r's payload into r.dst
)

type item struct {
	kind itemKind
	env  transport.Envelope
	data []byte
	r    *rendezvous
}

// rendezvous is a large (or synchronous) message that waits in its sender's buffer until the
// receiver fetches it.
type rendezvous struct {
	p       *pair
	payload []byte
	sent    transport.Completion // the send's

	// Guarded by p.mu. finished is set once the rendezvous has claimed its end: a fetch
	// started copying it, or fail completed it with err.
	dst      []byte
	got      transport.Completion // the fetch's, once asked
	finished bool
	err      error
}

var errFetchedTwice = errors.New("memtransport: a rendezvous message fetched twice")

// Send implements transport.Endpoint.
func (p *pair) Send(env transport.Envelope, payload []byte, sync bool, c transport.Completion) {
	p.mu.Lock()
	if err := p.failed; err != nil {
		p.mu.Unlock()
		c.Complete(err)
		return
	}
	p.sent.Messages++
	p.sent.Bytes += uint64(len(payload))
	if !sync && len(payload) <= p.net.eager {
		var data []byte
		if len(payload) > 0 {
			data = append(make([]byte, 0, len(payload)), payload...)
		}
		p.queue = append(p.queue, item{kind: itemEager, env: env, data: data})
		p.mu.Unlock()
		p.notify()
		c.Complete(nil)
		return
	}
	r := &rendezvous{p: p, payload: payload, sent: c}
	p.pending[r] = struct{}{}
	p.queue = append(p.queue, item{kind: itemRTS, env: env, r: r})
	p.mu.Unlock()
	p.notify()
}

// Sent implements transport.Counted.
func (p *pair) Sent() transport.Counters {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// Fetch implements transport.Rendezvous: the copy is queued on the wire the message came by,
// and carried out by whoever delivers on it.
func (r *rendezvous) Fetch(dst []byte, c transport.Completion) {
	p := r.p
	p.mu.Lock()
	if r.got != nil || r.finished {
		err := r.err
		if r.got != nil || err == nil {
			err = errFetchedTwice
		}
		p.mu.Unlock()
		c.Complete(err)
		return
	}
	r.dst, r.got = dst, c
	p.queue = append(p.queue, item{kind: itemFetch, r: r})
	p.mu.Unlock()
	p.notify()
}

// notify tells dst's side that something is queued.
func (p *pair) notify() {
	if p.net.polled {
		port := p.net.ports[p.dst]
		port.dirty.Store(true)
		port.Wake()
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// read is the pair's reader (pushed mode), owned by dst's port: it delivers what is queued
// until the port closes.
func (p *pair) read(port *Port, sink transport.Sink) {
	defer port.readers.Done()
	for {
		select {
		case <-p.kick:
		case <-port.stop:
			return
		}
		p.drain(sink)
	}
}

// drain delivers what was queued when it looked (what is queued meanwhile waits for the next
// drain, which its notify asks for) and reports whether there was anything.
func (p *pair) drain(sink transport.Sink) bool {
	p.mu.Lock()
	batch := p.queue
	p.queue, p.spare = p.spare[:0], nil
	p.mu.Unlock()
	if len(batch) == 0 {
		p.mu.Lock()
		p.spare = batch
		p.mu.Unlock()
		return false
	}
	for i := range batch {
		it := &batch[i]
		switch it.kind {
		case itemEager:
			sink.Deliver(it.env, it.data, nil)
			for j := range it.data {
				it.data[j] = 0xa5 // the payload was valid only during Deliver
			}
		case itemRTS:
			sink.Deliver(it.env, nil, it.r)
		case itemFetch:
			p.finish(it.r)
		}
	}
	clear(batch)
	p.mu.Lock()
	p.spare = batch[:0]
	p.mu.Unlock()
	return true
}

// finish carries out the fetch of r: it copies the payload into the fetch's buffer (cut to
// its length) and completes the send and the fetch, unless fail completed them first.
func (p *pair) finish(r *rendezvous) {
	p.mu.Lock()
	if r.finished {
		p.mu.Unlock()
		return
	}
	r.finished = true
	delete(p.pending, r)
	p.copying.Add(1)
	p.mu.Unlock()
	defer p.copying.Done()
	copy(r.dst, r.payload)
	r.sent.Complete(nil)
	r.got.Complete(nil)
}

// fail ends the wire with err: later sends complete with it at once, and every rendezvous that
// has not finished completes with it (its send, and its fetch if one was asked). With drop,
// what is queued is dropped too (nobody is left to take it); without, it is still delivered.
// It returns once every fetch in progress on the wire has called its completions.
func (p *pair) fail(err error, drop bool) {
	p.mu.Lock()
	if p.failed == nil {
		p.failed = err
	}
	pending := p.pending
	p.pending = map[*rendezvous]struct{}{}
	for r := range pending {
		r.finished, r.err = true, err
	}
	if drop {
		clear(p.queue)
		p.queue = p.queue[:0]
	}
	p.mu.Unlock()
	for r := range pending {
		r.sent.Complete(err)
		if r.got != nil {
			r.got.Complete(err)
		}
	}
	p.copying.Wait()
}
