package memtransport

import "time"

// The Port as a transport.Poller (polled mode): the rank's driving goroutine delivers what
// every peer has queued for it and carries out its fetches. The sleep protocol is transport's:
// whoever queues work for the port sets dirty and then rings the bell; Sleep re-checks dirty
// and ready before it waits on the bell, whose one-token buffer keeps a ring that comes
// between the re-check and the wait.

// Poll implements transport.Poller: it drains, once, every wire into this rank, starting at a
// different peer each time so that no sender is always served last.
func (p *Port) Poll() bool {
	p.mu.Lock()
	sink := p.sink
	p.mu.Unlock()
	if sink == nil {
		return false
	}
	p.dirty.Store(false)
	n := p.net
	did := false
	start := int(p.next % uint64(n.n))
	p.next++
	for i := range n.n {
		if n.pairs[(start+i)%n.n][p.rank].drain(sink) {
			did = true
		}
	}
	return did
}

// Sleep implements transport.Poller.
func (p *Port) Sleep(d time.Duration, ready func() bool) {
	if p.dirty.Load() || ready() {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.bell:
	case <-t.C:
	}
}

// Wake implements transport.Poller.
func (p *Port) Wake() {
	select {
	case p.bell <- struct{}{}:
	default:
	}
}

// Check implements transport.Poller: it reports the peers lost since the last call.
func (p *Port) Check() { p.reportLost() }
