package shm

import (
	"encoding/binary"
	"time"

	"github.com/gorun-hpc/gorun/transport"
)

// The send side: every record this rank writes into its ring towards the peer, an eager
// message or a rendezvous record (RTS, CTS, FIN), goes through putLocked, under p.mu. A record
// that finds no room, or finds others queued before it, waits in p.queue until the driver
// writes it (writeQueued). With batching on (Config.BatchLimit > 1), eager records are
// written with their stamps withheld and published a batch at a time (flushLocked).

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
	notify, written := p.putLocked(r)
	p.mu.Unlock()
	p.finishPut(r.done, notify, written)
}

// control sends a CTS or FIN record naming cookie.
func (p *peer) control(kind recKind, cookie uint64) {
	r := outRecord{kind: kind, bodyLen: 8}
	binary.LittleEndian.PutUint64(r.body[:], cookie)
	p.put(r)
}

// put writes r into the ring now if nothing is queued before it and there is room, and
// queues it otherwise (putLocked); r.done is told once r is written, or fails with the loss
// if the peer is lost. It takes p.mu and releases it before it notifies or tells r.done.
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
	notify, written := p.putLocked(r)
	p.mu.Unlock()
	p.finishPut(r.done, notify, written)
}

// putLocked writes r into the ring now if nothing is queued before it and there is room, and
// queues it otherwise; the driver writes the queue as the receiver makes room (writeQueued).
// p.mu must be held, and putLocked leaves it held. It returns what is left to do once the
// caller has released p.mu (finishPut): notify the peer, and, if r was written now rather
// than queued, tell r.done. Neither is done under p.mu: the critical section stays short,
// and a completion may send again.
func (p *peer) putLocked(r outRecord) (notify, written bool) {
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
			return publish, true
		}
	}
	p.queue = append(p.queue, r)
	p.queued.Store(int32(len(p.queue)))
	p.tx.requestSpace()
	return flushed, false
}

// finishPut does what putLocked left to its caller, who has released p.mu: it wakes the peer
// if notify is set, then, if written is set, tells done (if any) that the record is written.
func (p *peer) finishPut(done transport.Completion, notify, written bool) {
	if notify {
		p.t.notify(p, true)
	}
	if written && done != nil {
		done.Complete(nil)
	}
}

// batchLocked adds the eager record just written at pos to the open batch (opening one if
// needed) and reports whether that published the batch (it reached BatchLimit). p.mu must be
// held.
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

// overdueLocked reports whether the open batch has been held for FlushTimeout or longer. p.mu
// must be held.
func (p *peer) overdueLocked() bool {
	return p.held && time.Now().UnixNano()-p.heldSince.Load() >= int64(p.t.cfg.FlushTimeout)
}

// flushLocked publishes the open batch, if any, and reports whether there was one. p.mu must
// be held.
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

// writeQueued writes queued records while there is room; the driver calls it. It publishes
// the open batch first (queued records come after it). It takes p.mu and releases it before
// it notifies or tells the records' completions.
func (p *peer) writeQueued() bool {
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
