// Package memtransport is an in-memory twin of gorun's transports: a real implementation of
// transport.Endpoint, transport.Rendezvous and (polled) transport.Poller between ranks that
// are goroutines of one process, the way wireguard-go's conn/bindtest twins its UDP bind. The
// runtime above it (rank's matching and progress, comm's communicators and collectives) runs
// unchanged, under the race detector, without a launcher, processes, sockets or shared memory;
// rank.InProcess builds worlds over it.
//
// It keeps the contract the real transports keep (see package transport):
//
//   - Messages up to the eager limit are copied when sent, so the send completes at once and
//     its buffer may be reused; larger ones, and every synchronous one, go by rendezvous: the
//     receiver is told of the message, and the payload is copied straight from the sender's
//     buffer into the receive buffer once the receive has matched, which is when both the
//     send and the fetch complete. A message longer than the fetch's buffer is cut to it.
//   - Each ordered pair of ranks is one wire: what one rank sends another is delivered in send
//     order, whatever the sizes.
//   - Delivery is asynchronous, in one of two ways (Config.Polled): by a reader goroutine per
//     ordered pair, as a socket's reader delivers; or by the receiving rank's waiting
//     goroutine, which drives the Port as a transport.Poller, as shared-memory rings are
//     driven. A fetch is carried out the same way, so a matched receive completes later, as
//     it does over the real transports.
//   - Close ends a rank's port in order: what the rank sent before is still delivered (like
//     bytes already in a socket before its goodbye); what cannot finish — its rendezvous
//     sends, fetches from it, sends to it — completes with an error that matches
//     transport.ErrClosed.
//   - Lose simulates a rank's death: the wires to and from it are cut, what was in flight
//     fails, and every other rank's sink hears Sink.Lost (in polled mode at the next Check,
//     which is how shared memory reports a dead peer); the lost rank hears of every peer.
//
// And, as a test transport should, it assumes the worst of its users: an eager payload handed
// to Sink.Deliver is overwritten once Deliver returns, so a sink that keeps it past the call
// reads garbage (and the race detector may see it).
package memtransport

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/transport"
)

// DefaultEagerLimit is the eager limit when Config leaves it zero.
const DefaultEagerLimit = 16 << 10

// Config shapes a Network. The zero value means the defaults.
type Config struct {
	// EagerLimit is the largest message sent eagerly. Zero: DefaultEagerLimit; negative:
	// every message goes by rendezvous. Above transport.MaxEager it is cut to that, as the
	// real transports cut theirs.
	EagerLimit int
	// Polled makes delivery the receiving rank's work: its Port is a transport.Poller that
	// the rank's waiting goroutine drives. Otherwise a reader goroutine per ordered pair
	// delivers.
	Polled bool
}

// Network connects n ranks in one process. Every rank attaches its sink once (Attach) and
// gets its Port; a Port is closed by its rank. Network's methods are safe for concurrent use.
type Network struct {
	n      int
	eager  int // largest eager message; -1: none
	polled bool
	pairs  [][]*pair // pairs[src][dst]: the wire from src to dst (src == dst included)
	ports  []*Port   // by rank, made by New, attached by Attach
}

// New returns a network of n ranks.
func New(n int, cfg Config) (*Network, error) {
	if n < 1 {
		return nil, fmt.Errorf("memtransport: %d ranks", n)
	}
	eager := cfg.EagerLimit
	switch {
	case eager == 0:
		eager = DefaultEagerLimit
	case eager < 0:
		eager = -1
	}
	eager = min(eager, transport.MaxEager)
	net := &Network{n: n, eager: eager, polled: cfg.Polled, pairs: make([][]*pair, n), ports: make([]*Port, n)}
	for r := range n {
		net.ports[r] = &Port{net: net, rank: r, bell: make(chan struct{}, 1), stop: make(chan struct{})}
	}
	for src := range n {
		net.pairs[src] = make([]*pair, n)
		for dst := range n {
			net.pairs[src][dst] = &pair{net: net, src: src, dst: dst,
				pending: map[*rendezvous]struct{}{}, kick: make(chan struct{}, 1)}
		}
	}
	return net, nil
}

// Size is the number of ranks.
func (n *Network) Size() int { return n.n }

// EagerLimit is the largest message sent eagerly (-1: none is).
func (n *Network) EagerLimit() int { return n.eager }

// Polled reports whether the ports are transport.Pollers (Config.Polled).
func (n *Network) Polled() bool { return n.polled }

// Attach joins rank r to the network: from now on, what the others send r is delivered to
// sink. It returns r's Port. A rank attaches once; messages sent to it before are kept and
// delivered after.
func (n *Network) Attach(r int, sink transport.Sink) (*Port, error) {
	if r < 0 || r >= n.n {
		return nil, fmt.Errorf("memtransport: rank %d not in [0, %d)", r, n.n)
	}
	if sink == nil {
		return nil, errors.New("memtransport: attach without a sink")
	}
	p := n.ports[r]
	p.mu.Lock()
	if p.attached || p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("memtransport: rank %d attached twice", r)
	}
	p.attached, p.sink = true, sink
	p.mu.Unlock()
	if !n.polled {
		for src := range n.n {
			p.readers.Add(1)
			go n.pairs[src][r].read(p, sink)
		}
		p.reportLost()
	}
	return p, nil
}

// Lose cuts rank r off, as if its process had died: everything in flight to and from it is
// dropped, every operation that involves it fails with err (nil: a LostError), and every rank's
// sink hears that the other end is lost (r's of every other rank). Each rank hears of each
// lost peer once, however often it is lost.
func (n *Network) Lose(r int, err error) {
	if r < 0 || r >= n.n {
		return
	}
	if err == nil {
		err = &LostError{Rank: r}
	}
	for j := range n.n {
		n.pairs[r][j].fail(err, true)
		n.pairs[j][r].fail(err, true)
	}
	for j := range n.n {
		if j != r {
			n.ports[j].lose(r, err)
			n.ports[r].lose(j, err)
		}
	}
}

// LostError is the error of the operations Lose fails when it is given none.
type LostError struct{ Rank int }

func (e *LostError) Error() string { return fmt.Sprintf("memtransport: rank %d lost", e.Rank) }

// Port is one rank's end of the network: its endpoints to every rank, and in polled mode the
// Poller its waiting goroutine drives. Its methods are safe for concurrent use, except as
// transport.Poller says (one driver at a time).
type Port struct {
	net  *Network
	rank int

	// bell is rung (without blocking: capacity 1) when work arrives for a polled port and by
	// Wake; Sleep waits on it. A token left in it only makes the next Sleep return early.
	bell chan struct{}
	// dirty is set after work is queued for a polled port and cleared by Poll before it
	// looks, so Sleep's re-check sees any work Poll may have missed.
	dirty atomic.Bool

	// next is where Poll starts its round of the peers; only the driver touches it.
	next uint64

	// stop is closed by Close: the readers (pushed mode) exit; readers counts them.
	stop    chan struct{}
	readers sync.WaitGroup

	mu sync.Mutex
	// Guarded by mu.
	sink             transport.Sink // set by Attach
	attached, closed bool
	lost             []lostPeer   // losses not yet reported to sink
	heard            map[int]bool // peers recorded lost, each reported once
}

type lostPeer struct {
	rank int
	err  error
}

// Endpoint returns the endpoint that sends from this rank to peer (this rank included).
func (p *Port) Endpoint(peer int) transport.Endpoint { return p.net.pairs[p.rank][peer] }

// Poller returns the port as a transport.Poller in polled mode, and nil otherwise (deliveries
// then make progress on their own goroutines).
func (p *Port) Poller() transport.Poller {
	if !p.net.polled {
		return nil
	}
	return p
}

// Close ends this rank's port (see the package documentation): the readers into it stop,
// what was queued for it is dropped, and every send, rendezvous and fetch that involves it and
// has not finished completes with an error that matches transport.ErrClosed; messages it sent
// before are still delivered. Once Close returns, every completion it owes has been called.
// In polled mode, call it once no goroutine drives the port and none will again. It is
// idempotent.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.readers.Wait()
	n := p.net
	self := fmt.Errorf("memtransport: rank %d has closed: %w", p.rank, transport.ErrClosed)
	for j := range n.n {
		n.pairs[p.rank][j].fail(self, false) // what it sent is still delivered
		n.pairs[j][p.rank].fail(self, true)  // nobody is left to take what was sent to it
	}
	return nil
}

// lose records that peer is lost, for the sink to hear: at once in pushed mode, at the next
// Check in polled mode (the waiting goroutine is roused to make it).
func (p *Port) lose(peer int, err error) {
	p.mu.Lock()
	if p.heard[peer] {
		p.mu.Unlock()
		return
	}
	if p.heard == nil {
		p.heard = map[int]bool{}
	}
	p.heard[peer] = true
	p.lost = append(p.lost, lostPeer{peer, err})
	p.mu.Unlock()
	if p.net.polled {
		p.dirty.Store(true)
		p.Wake()
		return
	}
	p.reportLost()
}

// reportLost tells the sink of the losses recorded so far, if the port is attached.
func (p *Port) reportLost() {
	p.mu.Lock()
	sink, lost := p.sink, p.lost
	if sink == nil || p.closed {
		p.mu.Unlock()
		return
	}
	p.lost = nil
	p.mu.Unlock()
	for _, l := range lost {
		sink.Lost(l.rank, l.err)
	}
}
