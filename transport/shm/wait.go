package shm

import (
	"errors"
	"math/bits"
	"time"

	"golang.org/x/sys/unix"
)

// drainBudget bounds the records taken from one ring per poll, so one busy peer cannot starve
// the others.
const drainBudget = 64

// Poll implements transport.Poller: it takes arrived records, flushes queued ones, and moves
// bulk data both ways. Only the rank's driver calls it.
func (t *Transport) Poll() bool {
	did := false
	if t.useSummary {
		for w, word := range t.summary {
			set := word.Load()
			if set == 0 {
				continue
			}
			word.And(^set) // clear first, then drain: a record published after this sets it again (notify)
			for set != 0 {
				i := w*64 + bits.TrailingZeros64(set)
				set &= set - 1
				if p := t.peers[i]; p != nil && t.drain(p) {
					did = true
				}
			}
		}
	} else {
		for _, p := range t.list {
			if t.drain(p) {
				did = true
			}
		}
	}
	for _, p := range t.list {
		if p.gone.Load() {
			continue
		}
		if since := p.heldSince.Load(); since != 0 && time.Now().UnixNano()-since >= int64(t.cfg.FlushTimeout) {
			p.flushAndNotify()
		}
		if p.queued.Load() > 0 && p.writeQueued() {
			did = true
		}
		if len(p.streams) > 0 && p.pumpOut() {
			did = true
		}
		if p.nFetch.Load() > 0 && p.pumpIn() {
			did = true
		}
	}
	return did
}

// drain takes up to drainBudget records from p's ring. A peer that is gone is not read: its
// ring may be corrupt, and reading it again would find the same fault and report progress
// forever.
func (t *Transport) drain(p *peer) bool {
	if p.gone.Load() {
		return false
	}
	n := 0
	for ; n < drainBudget; n++ {
		rec, ok, err := p.rx.next()
		if err != nil {
			p.lose(err)
			return true
		}
		if !ok {
			break
		}
		if err := p.handle(&rec); err != nil {
			p.lose(err)
			return true
		}
		p.rx.release(rec)
	}
	if n == drainBudget && t.useSummary {
		// More to take next time. This rank sets a bit of its own summary here, its one
		// writer besides the peers (see layout.go): the records left were published before
		// Poll cleared the bit, so the peer will not set it again for them.
		t.summary[p.idx/64].Or(1 << (p.idx % 64))
	}
	if n > 0 && p.rx.flushIfWanted() {
		t.notify(p, false) // the producer waits for the room just made
	}
	return n > 0
}

// notify tells peer p that something it waits for has been published: a record in its ring
// from us (record) or bulk data or room. It sets our bit in p's summary (if not already set)
// and rings p's doorbell if p declared itself asleep; only the notifier that flips the
// declaration rings, so a burst costs one wake-up.
func (t *Transport) notify(p *peer, record bool) {
	if record && p.summary.Load()&p.summaryBit == 0 {
		p.summary.Or(p.summaryBit)
	}
	if p.sleeping.Load() != 0 && p.sleeping.CompareAndSwap(1, 0) {
		ringBell(p.bell)
	}
}

// Sleep implements transport.Poller. See doorbell.go for why no wake-up is lost. Before it
// sleeps it publishes how far it has read every ring: a producer that asks for room after
// this rank's last look would otherwise wait a whole sleep for it. Once it has declared
// itself asleep, it renews its own requests for room (renewRequests) before its last look.
func (t *Transport) Sleep(d time.Duration, ready func() bool) {
	for _, p := range t.list {
		if p.rx.flush() {
			t.notify(p, false)
		}
	}
	t.sleeping.Store(1)
	t.renewRequests()
	if t.hasWork() || ready() {
		t.sleeping.Store(0)
		return
	}
	t.bell.wait(d)
	t.sleeping.Store(0)
}

// renewRequests stores again the request for room in every ring and bulk pipe where this
// rank waits for room (records queued, streams waiting), after Sleep has declared this rank
// asleep. A consumer may have cleared the earlier request together with a head this rank had
// already seen (producer.requestSpace); without the renewal it would make room later and
// find no request, and this rank would sleep out d. A consumer that clears the renewed one
// does so after the declaration, so it sees it and rings.
func (t *Transport) renewRequests() {
	for _, p := range t.list {
		if p.gone.Load() {
			continue
		}
		if p.queued.Load() > 0 {
			p.tx.requestSpace()
		}
		if len(p.streams) > 0 {
			p.bulkW.requestSpace()
		}
	}
}

// hasWork reports whether Poll would find something: a record in a ring, bulk data for a
// matched receive, or room where a queued record or stream waits for it.
func (t *Transport) hasWork() bool {
	if t.useSummary {
		for _, w := range t.summary {
			if w.Load() != 0 {
				return true
			}
		}
	}
	for _, p := range t.list {
		if p.gone.Load() {
			continue
		}
		if !t.useSummary && p.rx.ready() {
			return true
		}
		if p.nFetch.Load() > 0 && p.bulkR.ready() {
			return true
		}
		// headCache without p.mu: see producer for why that is safe.
		if p.queued.Load() > 0 && p.tx.head.Load() != p.tx.headCache {
			return true
		}
		if len(p.streams) > 0 && p.bulkW.head.Load() != p.bulkW.headCache {
			return true
		}
	}
	return false
}

// Wake implements transport.Poller.
func (t *Transport) Wake() {
	if t.sleeping.Load() != 0 && t.sleeping.CompareAndSwap(1, 0) {
		ringBell(t.bell.fd)
	}
}

// checkEvery spaces liveness checks: a dead peer is noticed within this (plus a sleep slice),
// and a rank that sleeps and wakes often does not pay a system call each time.
const checkEvery = 20 * time.Millisecond

// Check implements transport.Poller: a local rank whose process has exited is lost. It asks
// the kernel through pidfds (one poll for all peers), or kill(pid, 0) where pidfds are
// unavailable, at most once per checkEvery.
func (t *Transport) Check() {
	now := time.Now()
	if now.Sub(t.lastCheck) < checkEvery {
		return
	}
	t.lastCheck = now
	fds := t.pollFds[:0]
	for _, p := range t.list {
		if p.gone.Load() {
			continue
		}
		if p.pidfd < 0 {
			if err := unix.Kill(p.pid, 0); errors.Is(err, unix.ESRCH) {
				t.exited(p)
			}
			continue
		}
		fds = append(fds, unix.PollFd{Fd: int32(p.pidfd), Events: unix.POLLIN})
	}
	t.pollFds = fds
	if len(fds) == 0 {
		return
	}
	// A raw call: with a zero timeout it never blocks (see rawsys.go for why raw).
	n, errno := rawPollNow(fds)
	if errno != 0 || n == 0 {
		return
	}
	for _, fd := range fds {
		if fd.Revents == 0 {
			continue
		}
		for _, p := range t.list {
			if p.pidfd == int(fd.Fd) {
				t.exited(p)
			}
		}
	}
}

// exited handles a local rank whose process has gone. What it published before exiting is
// still in the ring (a rank that finished its part exits while others take its last
// messages), so that is taken first; only then is the peer lost, failing whatever still
// waits on it.
func (t *Transport) exited(p *peer) {
	for t.drain(p) || p.nFetch.Load() > 0 && p.pumpIn() {
	}
	p.lose(errors.New("process exited"))
}
