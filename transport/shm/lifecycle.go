package shm

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/transport"
)

// A peer's end: lost (its process exited, or it broke the segment's format) or closed (this
// transport closes). Either way everything in flight with it completes with the reason, and
// every later send or fetch fails with it at once.

// end fails everything in flight with the peer with err, and makes every later send or fetch
// fail with it; it reports whether this call ended the peer (false: it had ended before). The
// driver calls it, or Close once no goroutine drives (streams are the driver's). It takes
// p.mu, then p.inMu, releasing each before it takes the next, and completes with neither
// held.
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
