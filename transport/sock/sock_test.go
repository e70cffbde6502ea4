package sock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/transport"
)

// recorder is a Sink that keeps what arrives and fetches rendezvous data at once.
type recorder struct {
	mu    sync.Mutex
	got   []message
	lost  []error
	cond  *sync.Cond
	limit int // fetch at most this many bytes of a rendezvous message (0: all)
}

type message struct {
	env  transport.Envelope
	data []byte
	err  error
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

type fetchDone struct {
	r   *recorder
	i   int
	err chan error
}

func (f fetchDone) Complete(err error) {
	f.r.mu.Lock()
	f.r.got[f.i].err = err
	f.r.mu.Unlock()
	f.r.cond.Broadcast()
	close(f.err)
}

func (r *recorder) Deliver(env transport.Envelope, payload []byte, rv transport.Rendezvous) {
	r.mu.Lock()
	i := len(r.got)
	if rv == nil {
		r.got = append(r.got, message{env: env, data: bytes.Clone(payload)})
		r.mu.Unlock()
		r.cond.Broadcast()
		return
	}
	size := env.Size
	if r.limit > 0 && r.limit < size {
		size = r.limit
	}
	dst := make([]byte, size)
	r.got = append(r.got, message{env: env, data: dst, err: errPending})
	r.mu.Unlock()
	rv.Fetch(dst, fetchDone{r, i, make(chan error)})
}

var errPending = errors.New("pending")

// messages returns a copy of what has arrived so far, taken under the lock: the reader and
// fetch goroutines append to got and complete its entries concurrently.
func (r *recorder) messages() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message(nil), r.got...)
}

// losses returns a copy of the losses reported so far, taken under the lock.
func (r *recorder) losses() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.lost...)
}

func (r *recorder) Lost(peer int, err error) {
	r.mu.Lock()
	r.lost = append(r.lost, err)
	r.mu.Unlock()
	r.cond.Broadcast()
}

// wait blocks until cond holds or the test's budget runs out.
func (r *recorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.AfterFunc(10*time.Second, func() { r.cond.Broadcast() })
	defer deadline.Stop()
	start := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
		r.cond.Wait()
	}
}

type sendDone chan error

func (s sendDone) Complete(err error) { s <- err }

var testKey = []byte("0123456789abcdef0123456789abcdef")

// pair connects rank 0 and rank 1 over network and returns their Nets and sinks.
func pair(t *testing.T, network string, eager int) (a, b *Net, ra, rb *recorder) {
	t.Helper()
	ra, rb = newRecorder(), newRecorder()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = fmt.Sprintf("@gorun-test-%d-%d", time.Now().UnixNano(), 0)
	}
	var err error
	a, err = Listen(network, addr, Config{Self: 0, Key: testKey, EagerLimit: eager, Sink: ra})
	if err != nil {
		t.Fatal(err)
	}
	if network == "unix" {
		addr = fmt.Sprintf("@gorun-test-%d-%d", time.Now().UnixNano(), 1)
	}
	b, err = Listen(network, addr, Config{Self: 1, Key: testKey, EagerLimit: eager, Sink: rb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- a.Connect(ctx, nil, []int{1}) }()
	go func() { errs <- b.Connect(ctx, map[int][]string{0: {a.Addr()}}, nil) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { closeBoth(a, b) })
	return a, b, ra, rb
}

// closeBoth closes two Nets at once, as ranks of a job do: each waits for the other's Bye.
func closeBoth(a, b *Net) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Close() }()
	go func() { defer wg.Done(); b.Close() }()
	wg.Wait()
}

func pattern(n, seed int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + seed)
	}
	return p
}

func TestSendSizesBothNetworks(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			a, _, _, rb := pair(t, network, 1024)
			sizes := []int{0, 1, 7, 1024, 1025, 64 << 10, 3<<20 + 5}
			ep := a.Endpoint(1)
			for i, n := range sizes {
				done := make(sendDone, 1)
				ep.Send(transport.Envelope{Src: 0, Ctx: 3, Tag: i, Size: n}, pattern(n, i), false, done)
				if n <= 1024 {
					if err := <-done; err != nil {
						t.Fatalf("eager send of %d: %v", n, err)
					}
				} else {
					// the rendezvous completes once the peer fetched; do not block here
					defer func() {
						if err := <-done; err != nil {
							t.Errorf("rendezvous send of %d: %v", n, err)
						}
					}()
				}
			}
			rb.wait(t, "all messages", func() bool {
				if len(rb.got) < len(sizes) {
					return false
				}
				for _, m := range rb.got {
					if m.err != nil {
						return false
					}
				}
				return true
			})
			for i, m := range rb.messages() {
				if m.env.Tag != i || m.env.Ctx != 3 || m.env.Src != 0 || m.env.Size != sizes[i] {
					t.Fatalf("message %d: envelope %+v", i, m.env)
				}
				if !bytes.Equal(m.data, pattern(sizes[i], i)) {
					t.Fatalf("message %d (%d bytes): payload differs", i, sizes[i])
				}
			}
		})
	}
}

func TestRendezvousTruncatedFetch(t *testing.T) {
	a, _, _, rb := pair(t, "tcp", 16)
	rb.mu.Lock()
	rb.limit = 10
	rb.mu.Unlock()
	done := make(sendDone, 1)
	a.Endpoint(1).Send(transport.Envelope{Src: 0, Size: 100}, pattern(100, 1), false, done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "fetch", func() bool { return len(rb.got) == 1 && rb.got[0].err == nil })
	if !bytes.Equal(rb.messages()[0].data, pattern(100, 1)[:10]) {
		t.Fatal("truncated fetch got the wrong bytes")
	}
	// The connection is still in step after discarding the rest.
	a.Endpoint(1).Send(transport.Envelope{Src: 0, Tag: 5, Size: 3}, []byte("abc"), false, done)
	<-done
	rb.wait(t, "second message", func() bool { return len(rb.got) == 2 })
	if got := rb.messages()[1].data; string(got) != "abc" {
		t.Fatalf("second message %q", got)
	}
}

func TestSyncSendWaitsForFetch(t *testing.T) {
	a, _, _, rb := pair(t, "tcp", 1024)
	done := make(sendDone, 1)
	a.Endpoint(1).Send(transport.Envelope{Src: 0, Size: 4}, []byte("sync"), true, done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "sync message", func() bool { return len(rb.got) == 1 && rb.got[0].err == nil })
	if got := rb.messages()[0].data; string(got) != "sync" {
		t.Fatalf("got %q", got)
	}
}

func TestBidirectionalLargeStreamsDoNotDeadlock(t *testing.T) {
	a, b, ra, rb := pair(t, "tcp", 1024)
	const n, size = 20, 2 << 20
	var wg sync.WaitGroup
	for _, side := range []struct {
		from *Net
		to   int
	}{{a, 1}, {b, 0}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(sendDone, n)
			for i := range n {
				side.from.Endpoint(side.to).Send(transport.Envelope{Src: 1 - side.to, Tag: i, Size: size}, pattern(size, i), false, done)
			}
			for range n {
				if err := <-done; err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, r := range []*recorder{ra, rb} {
		r.wait(t, "all streams", func() bool { return len(r.got) == n })
	}
}

func TestWrongKeyIsRefused(t *testing.T) {
	rec := newRecorder()
	n, err := Listen("tcp", "127.0.0.1:0", Config{Self: 0, Key: testKey, Sink: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	go n.Connect(context.Background(), nil, []int{1})
	nc, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := initiate(nc, []byte("not the job key at all, really!!"), 1, 0); !errors.Is(err, ErrAuth) {
		t.Fatalf("initiate with the wrong key: %v, want ErrAuth", err)
	}
	// Whatever the intruder writes next is never delivered.
	var h [HeaderLen]byte
	(&Header{Kind: KindEager, Src: 1, Len: 1, Size: 1, Seq: 1}).Put(h[:])
	nc.Write(append(h[:], 'x'))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _ := n.Refused(); c == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("refusal not counted")
		}
		time.Sleep(time.Millisecond)
	}
	if n.Endpoint(1) != nil || len(rec.messages()) != 0 {
		t.Fatal("an unauthenticated connection was installed")
	}
}

func TestCorruptFrameLosesPeer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame func() []byte
	}{
		{"bad magic", func() []byte { return make([]byte, HeaderLen) }},
		{"wrong sequence", func() []byte {
			var h [HeaderLen]byte
			(&Header{Kind: KindEager, Src: 0, Seq: 5}).Put(h[:])
			return h[:]
		}},
		{"data for nobody", func() []byte {
			var h [HeaderLen]byte
			(&Header{Kind: KindData, Src: 0, Cookie: 99, Len: 4}).Put(h[:])
			return append(h[:], "junk"...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, _, rb := pair(t, "tcp", 1024)
			c := a.Endpoint(1).(*conn)
			c.nc.Write(tc.frame())
			rb.wait(t, "peer lost", func() bool { return len(rb.lost) == 1 })
			if lost := rb.losses()[0]; !errors.Is(lost, transport.ErrCorrupt) {
				t.Fatalf("lost with %v, want ErrCorrupt", lost)
			}
		})
	}
}

func TestPeerVanishingIsLost(t *testing.T) {
	a, b, _, rb := pair(t, "tcp", 1024)
	a.Endpoint(1).(*conn).nc.Close() // no Bye: as if the process died
	rb.wait(t, "peer lost", func() bool { return len(rb.lost) == 1 })
	done := make(sendDone, 1)
	b.Endpoint(0).Send(transport.Envelope{Src: 1, Size: 1}, []byte{1}, false, done)
	if err := <-done; err == nil {
		t.Fatal("send to a lost peer succeeded")
	}
}

func TestOrderlyCloseIsNotALoss(t *testing.T) {
	a, b, ra, rb := pair(t, "tcp", 1024)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Close() }()
	go func() { defer wg.Done(); time.Sleep(20 * time.Millisecond); b.Close() }()
	wg.Wait()
	ra.mu.Lock()
	defer ra.mu.Unlock()
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if len(ra.lost)+len(rb.lost) != 0 {
		t.Fatalf("orderly close reported losses: %v %v", ra.lost, rb.lost)
	}
}

// TestStrangerFloodThenPeer: a stranger opens many connections, some silent and some
// sending garbage, before the real peer connects; every one is refused or held within the
// handshake cap, and the peer's connection still gets through.
func TestStrangerFloodThenPeer(t *testing.T) {
	rec := newRecorder()
	n, err := Listen("tcp", "127.0.0.1:0", Config{Self: 0, Key: testKey, Sink: rec})
	if err != nil {
		t.Fatal(err)
	}
	var strangers []net.Conn
	defer func() {
		for _, c := range strangers {
			c.Close()
		}
	}()
	for i := range 3 * maxHandshakes {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		strangers = append(strangers, c)
		if i%2 == 0 {
			c.Write(bytes.Repeat([]byte{'x'}, helloLen))
		}
	}
	// The garbage hellos are refused at once; the silent ones hold their slots. Close them,
	// as a stranger's connections end, and the real peer gets in.
	for _, c := range strangers {
		c.Close()
	}
	peer, err := Listen("tcp", "127.0.0.1:0", Config{Self: 1, Key: testKey, Sink: newRecorder()})
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	defer closeBoth(n, peer)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- n.Connect(ctx, nil, []int{1}) }()
	go func() { errs <- peer.Connect(ctx, map[int][]string{0: {n.Addr()}}, nil) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if refused, _ := n.Refused(); refused < int64(maxHandshakes) {
		t.Fatalf("%d connections refused, want at least %d", refused, maxHandshakes)
	}
}
