package shm

import (
	"errors"
	"math/bits"
	"time"
	"unsafe"

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
			word.And(^set) // clear first, then drain: a record published after this sets it again
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
		if p.queued.Load() > 0 && p.flush() {
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
		t.summary[p.idx/64].Or(1 << (p.idx % 64)) // more to take next time
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
		ring(p.bell)
	}
}

// Sleep implements transport.Poller. See doorbell.go for why no wake-up is lost. Before it
// sleeps it publishes how far it has read every ring: a producer that asks for room after
// this rank's last look would otherwise wait a whole sleep for it.
func (t *Transport) Sleep(d time.Duration, ready func() bool) {
	for _, p := range t.list {
		if p.rx.flush() {
			t.notify(p, false)
		}
	}
	t.sleeping.Store(1)
	if t.hasWork() || ready() {
		t.sleeping.Store(0)
		return
	}
	t.bell.wait(d)
	t.sleeping.Store(0)
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
		ring(t.bell.fd)
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
	// A raw call: with a zero timeout it never blocks (see doorbell.go for why raw). ppoll,
	// not poll: arm64 has only the former.
	var zero unix.Timespec
	n, _, errno := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(unsafe.SliceData(fds))), uintptr(len(fds)),
		uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
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
