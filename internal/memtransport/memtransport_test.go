package memtransport

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/transport"
)

// testTimeout bounds every wait in these tests: a hang fails the test, not the binary.
const testTimeout = 10 * time.Second

// completion records what a transport reports, and fails the test on a second report.
type completion struct {
	t    *testing.T
	n    atomic.Int32
	err  error
	done chan struct{}
}

func newCompletion(t *testing.T) *completion {
	return &completion{t: t, done: make(chan struct{})}
}

func (c *completion) Complete(err error) {
	if c.n.Add(1) != 1 {
		c.t.Errorf("completed twice (second: %v)", err)
		return
	}
	c.err = err
	close(c.done)
}

func (c *completion) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait returns the completion's error, failing the test if it does not come in time.
func (c *completion) wait() error {
	c.t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(testTimeout):
		c.t.Fatal("no completion")
		return nil
	}
}

// delivery is one message a recording sink got.
type delivery struct {
	env  transport.Envelope
	data []byte // eager: a copy; rendezvous: what the fetch brought (once fetched)
	rndv bool
}

// recorder is a transport.Sink that keeps what arrives. With fetch set it fetches every
// rendezvous message from inside Deliver (as the matcher may) into a buffer of fetch(size)
// bytes.
type recorder struct {
	t     *testing.T
	fetch func(size int) int

	mu      sync.Mutex
	got     []*delivery
	fetches []*completion
	lost    map[int]error
	kept    [][]byte // eager payloads as passed, kept past Deliver (to see the poison)
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, lost: map[int]error{}}
}

func (s *recorder) Deliver(env transport.Envelope, payload []byte, r transport.Rendezvous) {
	d := &delivery{env: env, rndv: r != nil}
	var c *completion
	if r == nil {
		d.data = bytes.Clone(payload)
	} else if s.fetch != nil {
		d.data = make([]byte, s.fetch(env.Size))
		c = newCompletion(s.t)
	}
	s.mu.Lock()
	s.got = append(s.got, d)
	if r == nil {
		s.kept = append(s.kept, payload)
	}
	if c != nil {
		s.fetches = append(s.fetches, c)
	}
	s.mu.Unlock()
	if c != nil {
		r.Fetch(d.data, c)
	}
}

func (s *recorder) Lost(peer int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.lost[peer]; ok {
		s.t.Errorf("peer %d reported lost twice", peer)
	}
	s.lost[peer] = err
}

func (s *recorder) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *recorder) lostErr(peer int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost[peer]
}

// until drives port (in polled mode) or just waits until cond holds, failing the test if it
// does not in time.
func until(t *testing.T, port *Port, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		if pl := port.Poller(); pl != nil {
			pl.Check()
			if !pl.Poll() {
				pl.Sleep(time.Millisecond, cond)
			}
			continue
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed*13 + i>>10)
	}
	return b
}

var modes = []struct {
	name string
	cfg  Config
}{
	{"pushed", Config{}},
	{"polled", Config{Polled: true}},
}

func newNet(t *testing.T, n int, cfg Config) *Network {
	t.Helper()
	net, err := New(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func attach(t *testing.T, net *Network, r int, s transport.Sink) *Port {
	t.Helper()
	p, err := net.Attach(r, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestOrderAndProtocols: two senders interleave messages of every size, eager and
// rendezvous, synchronous or not, to one receiver; each sender's messages arrive in send
// order, by the protocol the size and mode call for, intact, and every completion comes once.
func TestOrderAndProtocols(t *testing.T) {
	sizes := []int{0, 1, 100, DefaultEagerLimit, DefaultEagerLimit + 1, 1 << 20, 3<<20 + 5}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			net := newNet(t, 3, mode.cfg)
			rec := newRecorder(t)
			rec.fetch = func(size int) int { return size }
			recv := attach(t, net, 2, rec)
			for src := range 2 {
				attach(t, net, src, newRecorder(t))
			}
			type sent struct {
				src, tag, size int
				sync           bool
				c              *completion
			}
			var all []sent
			var mu sync.Mutex
			var wg sync.WaitGroup
			for src := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ep := net.ports[src].Endpoint(2)
					for k := range 3 {
						for i, size := range sizes {
							tag := k*100 + i
							s := sent{src: src, tag: tag, size: size, sync: k == 1, c: newCompletion(t)}
							mu.Lock()
							all = append(all, s)
							mu.Unlock()
							ep.Send(transport.Envelope{Src: src, Tag: tag, Size: size}, pattern(size, src*1000+tag), s.sync, s.c)
						}
					}
				}()
			}
			wg.Wait()
			// In polled mode the fetches are carried out by the receiver's polls too.
			until(t, recv, func() bool {
				if rec.count() != len(all) {
					return false
				}
				rec.mu.Lock()
				defer rec.mu.Unlock()
				for _, c := range rec.fetches {
					if !c.isDone() {
						return false
					}
				}
				return true
			})
			for _, s := range all {
				if err := s.c.wait(); err != nil {
					t.Errorf("send from %d tag %d: %v", s.src, s.tag, err)
				}
			}
			rec.mu.Lock()
			fetches := rec.fetches
			rec.mu.Unlock()
			for _, c := range fetches {
				if err := c.wait(); err != nil {
					t.Errorf("fetch: %v", err)
				}
			}
			next := [2]int{}
			for _, d := range rec.got {
				src := d.env.Src
				k, i := next[src]/len(sizes), next[src]%len(sizes)
				next[src]++
				tag, size := k*100+i, sizes[i]
				if d.env.Tag != tag || d.env.Size != size {
					t.Fatalf("from %d: got tag %d size %d, want tag %d size %d (reordered)", src, d.env.Tag, d.env.Size, tag, size)
				}
				wantRndv := k == 1 || size > DefaultEagerLimit
				if d.rndv != wantRndv {
					t.Errorf("from %d tag %d (%d bytes, sync %v): rendezvous %v, want %v", src, tag, size, k == 1, d.rndv, wantRndv)
				}
				if !bytes.Equal(d.data, pattern(size, src*1000+tag)) {
					t.Errorf("from %d tag %d: payload differs", src, tag)
				}
			}
		})
	}
}

// TestEagerCopiesAtSend: an eager send completes at once, and the sender may reuse its buffer.
func TestEagerCopiesAtSend(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			net := newNet(t, 2, mode.cfg)
			rec := newRecorder(t)
			recv := attach(t, net, 1, rec)
			attach(t, net, 0, newRecorder(t))
			buf := pattern(64, 1)
			c := newCompletion(t)
			net.ports[0].Endpoint(1).Send(transport.Envelope{Src: 0, Size: 64}, buf, false, c)
			if !c.isDone() {
				t.Fatal("an eager send did not complete when Send returned")
			}
			clear(buf)
			// A second message: once it is delivered, the first one's Deliver has returned.
			net.ports[0].Endpoint(1).Send(transport.Envelope{Src: 0, Size: 1}, []byte{1}, false, newCompletion(t))
			until(t, recv, func() bool { return rec.count() == 2 })
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !bytes.Equal(rec.got[0].data, pattern(64, 1)) {
				t.Fatal("the receiver saw the sender's later writes")
			}
			if !bytes.Equal(rec.kept[0], bytes.Repeat([]byte{0xa5}, 64)) {
				t.Fatal("an eager payload was left intact after Deliver returned")
			}
		})
	}
}

// TestRendezvousCompletesOnFetch: a rendezvous send completes only once the receiver has
// fetched it; a short fetch buffer gets the message's start.
func TestRendezvousCompletesOnFetch(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			net := newNet(t, 2, Config{EagerLimit: -1, Polled: mode.cfg.Polled})
			var got transport.Rendezvous
			var mu sync.Mutex
			sink := &funcSink{deliver: func(env transport.Envelope, _ []byte, r transport.Rendezvous) {
				mu.Lock()
				got = r
				mu.Unlock()
			}}
			recv := attach(t, net, 1, sink)
			attach(t, net, 0, newRecorder(t))
			c := newCompletion(t)
			net.ports[0].Endpoint(1).Send(transport.Envelope{Src: 0, Size: 10}, pattern(10, 2), false, c)
			until(t, recv, func() bool { mu.Lock(); defer mu.Unlock(); return got != nil })
			time.Sleep(10 * time.Millisecond)
			if c.isDone() {
				t.Fatal("a rendezvous send completed before its fetch")
			}
			dst := make([]byte, 4)
			fc := newCompletion(t)
			got.Fetch(dst, fc)
			until(t, recv, fc.isDone)
			if err := fc.wait(); err != nil {
				t.Fatal(err)
			}
			if err := c.wait(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dst, pattern(10, 2)[:4]) {
				t.Fatalf("short fetch got %v", dst)
			}
			again := newCompletion(t)
			got.Fetch(dst, again)
			if err := again.wait(); !errors.Is(err, errFetchedTwice) {
				t.Fatalf("second fetch: %v", err)
			}
		})
	}
}

type funcSink struct {
	deliver func(transport.Envelope, []byte, transport.Rendezvous)
	lost    func(int, error)
}

func (s *funcSink) Deliver(env transport.Envelope, p []byte, r transport.Rendezvous) {
	s.deliver(env, p, r)
}

func (s *funcSink) Lost(peer int, err error) {
	if s.lost != nil {
		s.lost(peer, err)
	}
}

// TestClose: a closed rank's earlier messages are still delivered, its unfinished rendezvous
// sends and the fetches of them fail with ErrClosed, as do sends from it and to it; Close is
// idempotent.
func TestClose(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			net := newNet(t, 3, mode.cfg)
			rec := newRecorder(t)
			recv := attach(t, net, 1, rec)
			sender := attach(t, net, 0, newRecorder(t))
			third := attach(t, net, 2, newRecorder(t))
			ep := sender.Endpoint(1)
			eager, big := newCompletion(t), newCompletion(t)
			ep.Send(transport.Envelope{Src: 0, Tag: 1, Size: 8}, pattern(8, 1), false, eager)
			ep.Send(transport.Envelope{Src: 0, Tag: 2, Size: 1 << 20}, pattern(1<<20, 2), false, big)
			// A rendezvous from rank 2 to rank 0, delivered there and never fetched.
			toClosed := newCompletion(t)
			third.Endpoint(0).Send(transport.Envelope{Src: 2, Size: 1 << 20}, pattern(1<<20, 3), false, toClosed)
			if err := sender.Close(); err != nil {
				t.Fatal(err)
			}
			if err := big.wait(); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("pending rendezvous send at Close: %v", err)
			}
			if err := toClosed.wait(); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("rendezvous send to a rank that closed: %v", err)
			}
			if err := eager.wait(); err != nil {
				t.Fatal(err)
			}
			rec.fetch = nil
			until(t, recv, func() bool { return rec.count() == 2 })
			if rec.got[0].env.Tag != 1 || rec.got[1].env.Tag != 2 || !rec.got[1].rndv {
				t.Fatalf("after the sender closed, got %+v, %+v", rec.got[0].env, rec.got[1].env)
			}
			for _, tc := range []struct {
				name string
				ep   transport.Endpoint
				sync bool
			}{{"from the closed rank", ep, false}, {"to the closed rank", third.Endpoint(0), false}, {"synchronous to it", third.Endpoint(0), true}} {
				c := newCompletion(t)
				tc.ep.Send(transport.Envelope{Size: 1}, []byte{1}, tc.sync, c)
				if err := c.wait(); !errors.Is(err, transport.ErrClosed) {
					t.Errorf("send %s: %v, want ErrClosed", tc.name, err)
				}
			}
			if err := sender.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

// TestCloseFailsUnfetched: a rendezvous delivered to a rank that then closes without fetching
// it fails at the sender, and a fetch of a message whose sender closed fails.
func TestCloseFailsUnfetched(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			net := newNet(t, 2, mode.cfg)
			var rs []transport.Rendezvous
			var mu sync.Mutex
			sink := &funcSink{deliver: func(_ transport.Envelope, _ []byte, r transport.Rendezvous) {
				mu.Lock()
				rs = append(rs, r)
				mu.Unlock()
			}}
			recv := attach(t, net, 1, sink)
			sender := attach(t, net, 0, newRecorder(t))
			c := newCompletion(t)
			sender.Endpoint(1).Send(transport.Envelope{Src: 0, Size: 1 << 20}, make([]byte, 1<<20), true, c)
			until(t, recv, func() bool { mu.Lock(); defer mu.Unlock(); return len(rs) == 1 })
			sender.Close()
			if err := c.wait(); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("send: %v", err)
			}
			fc := newCompletion(t)
			rs[0].Fetch(make([]byte, 1<<20), fc)
			if err := fc.wait(); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("fetch from a rank that closed: %v", err)
			}
		})
	}
}

// TestLose: every rank hears that a lost rank is gone (polled: at its next Check) and the lost
// rank hears of every other; what was in flight fails with the loss's error, and so do later
// sends.
func TestLose(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			net := newNet(t, 3, mode.cfg)
			recs := make([]*recorder, 3)
			ports := make([]*Port, 3)
			for r := range ports {
				recs[r] = newRecorder(t)
				ports[r] = attach(t, net, r, recs[r])
			}
			pending := newCompletion(t)
			ports[0].Endpoint(1).Send(transport.Envelope{Src: 0, Size: 1 << 20}, make([]byte, 1<<20), false, pending)
			cause := errors.New("killed")
			net.Lose(1, cause)
			if err := pending.wait(); !errors.Is(err, cause) {
				t.Fatalf("rendezvous in flight to the lost rank: %v", err)
			}
			for r, wantLost := range [][]int{{1}, {0, 2}, {1}} {
				for _, peer := range wantLost {
					until(t, ports[r], func() bool { return recs[r].lostErr(peer) != nil })
					if err := recs[r].lostErr(peer); !errors.Is(err, cause) {
						t.Errorf("rank %d heard of rank %d: %v", r, peer, err)
					}
				}
			}
			later := newCompletion(t)
			ports[2].Endpoint(1).Send(transport.Envelope{Src: 2, Size: 1}, []byte{1}, false, later)
			if err := later.wait(); !errors.Is(err, cause) {
				t.Fatalf("send to the lost rank: %v", err)
			}
			net.Lose(1, nil) // a second loss is not reported again (recorder checks)
			var le *LostError
			net.Lose(2, nil)
			until(t, ports[0], func() bool { return recs[0].lostErr(2) != nil })
			if !errors.As(recs[0].lostErr(2), &le) || le.Rank != 2 {
				t.Fatalf("default loss error: %v", recs[0].lostErr(2))
			}
		})
	}
}

// TestSleep: Sleep returns at once when work is queued or ready holds, when Wake is called
// (also from before it began), and after its duration otherwise.
func TestSleep(t *testing.T) {
	net := newNet(t, 2, Config{Polled: true})
	p := attach(t, net, 0, newRecorder(t))
	attach(t, net, 1, newRecorder(t))
	never := func() bool { return false }
	timed := func(f func()) time.Duration {
		start := time.Now()
		f()
		return time.Since(start)
	}
	if d := timed(func() { p.Sleep(testTimeout, func() bool { return true }) }); d > testTimeout/2 {
		t.Fatalf("Sleep with ready true took %v", d)
	}
	p.Wake()
	if d := timed(func() { p.Sleep(testTimeout, never) }); d > testTimeout/2 {
		t.Fatalf("Sleep after Wake took %v", d)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		net.ports[1].Endpoint(0).Send(transport.Envelope{Src: 1}, nil, false, newCompletion(t))
	}()
	if d := timed(func() { p.Sleep(testTimeout, never) }); d > testTimeout/2 {
		t.Fatalf("Sleep while a message came took %v", d)
	}
	if d := timed(func() { p.Sleep(testTimeout, never) }); d > testTimeout/2 {
		t.Fatalf("Sleep with a message queued took %v", d)
	}
	if !p.Poll() || p.Poll() {
		t.Fatal("Poll did not deliver the message exactly once")
	}
	select {
	case <-p.bell: // a ring left over if the message came before the sleeps began
	default:
	}
	if d := timed(func() { p.Sleep(5*time.Millisecond, never) }); d < 5*time.Millisecond {
		t.Fatalf("an idle Sleep of 5ms returned after %v", d)
	}
}

// TestCounters: Sent counts messages and payload bytes per wire.
func TestCounters(t *testing.T) {
	net := newNet(t, 2, Config{})
	attach(t, net, 1, newRecorder(t))
	p := attach(t, net, 0, newRecorder(t))
	ep := p.Endpoint(1)
	for _, n := range []int{0, 10, 1 << 20} {
		ep.Send(transport.Envelope{Src: 0, Size: n}, make([]byte, n), false, newCompletion(t))
	}
	got := ep.(transport.Counted).Sent()
	if want := (transport.Counters{Messages: 3, Bytes: 10 + 1<<20}); got != want {
		t.Fatalf("Sent = %+v, want %+v", got, want)
	}
}

func TestBadUse(t *testing.T) {
	if _, err := New(0, Config{}); err == nil {
		t.Error("New(0) did not fail")
	}
	net := newNet(t, 1, Config{EagerLimit: 1 << 30})
	if net.EagerLimit() != transport.MaxEager {
		t.Errorf("eager limit %d, want it cut to %d", net.EagerLimit(), transport.MaxEager)
	}
	attach(t, net, 0, newRecorder(t))
	for _, r := range []int{0, 1, -1} {
		if _, err := net.Attach(r, newRecorder(t)); err == nil {
			t.Errorf("Attach(%d) again did not fail", r)
		}
	}
	if _, err := newNet(t, 1, Config{}).Attach(0, nil); err == nil {
		t.Error("Attach without a sink did not fail")
	}
}

// TestCloseStopsReaders: closing every port ends every goroutine the network started.
func TestCloseStopsReaders(t *testing.T) {
	net := newNet(t, 4, Config{})
	ports := make([]*Port, 4)
	for r := range ports {
		ports[r] = attach(t, net, r, newRecorder(t))
	}
	for _, p := range ports {
		p.Close()
	}
	for _, p := range ports {
		done := make(chan struct{})
		go func() { p.readers.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Fatal(fmt.Sprintf("rank %d's readers did not stop", p.rank))
		}
	}
}
