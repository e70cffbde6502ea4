package shm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gorun-hpc/gorun/transport"
	"golang.org/x/sys/unix"
)

// sink records deliveries and fetches rendezvous data at once.
type sink struct {
	mu   sync.Mutex
	got  []delivery
	lost []error
	cap  int // fetch at most this many bytes (0: all)
}

type delivery struct {
	env  transport.Envelope
	data []byte
	done bool
	err  error
}

func (s *sink) Deliver(env transport.Envelope, payload []byte, r transport.Rendezvous) {
	s.mu.Lock()
	s.got = append(s.got, delivery{env: env})
	i := len(s.got) - 1
	limit := s.cap
	s.mu.Unlock()
	if r == nil {
		s.mu.Lock()
		s.got[i].data = bytes.Clone(payload)
		s.got[i].done = true
		s.mu.Unlock()
		return
	}
	n := env.Size
	if limit > 0 && limit < n {
		n = limit
	}
	dst := make([]byte, n)
	s.mu.Lock()
	s.got[i].data = dst
	s.mu.Unlock()
	r.Fetch(dst, fetched{s, i})
}

type fetched struct {
	s *sink
	i int
}

func (f fetched) Complete(err error) {
	f.s.mu.Lock()
	f.s.got[f.i].err = err
	f.s.got[f.i].done = true
	f.s.mu.Unlock()
}

func (s *sink) Lost(peer int, err error) {
	s.mu.Lock()
	s.lost = append(s.lost, err)
	s.mu.Unlock()
}

func (s *sink) count(done bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := range s.got {
		if !done || s.got[i].done {
			n++
		}
	}
	return n
}

type sent chan error

func (c sent) Complete(err error) { c <- err }

// node makes n transports in this process, as n local ranks would.
func node(t *testing.T, n int, tweak func(*Config)) ([]*Transport, []*sink) {
	t.Helper()
	local, pids := make([]int, n), make([]int, n)
	for i := range local {
		local[i], pids[i] = i, os.Getpid()
	}
	ts, sinks := make([]*Transport, n), make([]*sink, n)
	errs := make(chan error, n)
	job := fmt.Sprintf("test-%s-%d", t.Name(), time.Now().UnixNano())
	for i := range n {
		sinks[i] = &sink{}
		cfg := Config{Sink: sinks[i], Self: i, Local: local, Pids: pids, JobID: job, Timeout: 10 * time.Second}
		if tweak != nil {
			tweak(&cfg)
		}
		go func() {
			var err error
			ts[i], err = New(cfg)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, tr := range ts {
			tr.Close()
		}
	})
	return ts, sinks
}

// drive runs every transport's progress until cond holds, as each rank's driver would.
func drive(t *testing.T, ts []*Transport, cond func() bool) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, tr := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !tr.Poll() {
					tr.Sleep(time.Millisecond, func() bool { return false })
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
}

func TestTransportProtocols(t *testing.T) {
	cases := []struct {
		name  string
		tweak func(*Config)
		sync  bool
	}{
		{"pipelined", func(c *Config) { c.DisableCMA = true }, false},
		{"cma", func(c *Config) { c.CMAMin, c.CMAMax = 1, 1<<30 }, false},
		{"sync", func(c *Config) { c.DisableCMA = true }, true},
		{"fallback file", func(c *Config) { c.Fallback = true }, false},
		{"summary", func(c *Config) { c.SummaryAbove = -1 }, false},
	}
	sizes := []int{0, 1, 100, DefaultEagerLimit, DefaultEagerLimit + 1, 200 << 10, 3<<20 + 7}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, sinks := node(t, 2, tc.tweak)
			if tc.name == "fallback file" && (ts[0].seg.memfd || ts[1].seg.memfd) {
				t.Fatalf("the fallback made a memfd")
			}
			ep := ts[0].Endpoint(1)
			done := make(sent, len(sizes))
			for i, n := range sizes {
				ep.Send(transport.Envelope{Src: 0, Ctx: 5, Tag: i, Size: n}, payloadFor(i, n), tc.sync, done)
			}
			finished := 0
			drive(t, ts, func() bool {
				for {
					select {
					case err := <-done:
						if err != nil {
							t.Error(err)
						}
						finished++
						continue
					default:
					}
					break
				}
				return finished == len(sizes) && sinks[1].count(true) == len(sizes)
			})
			for i, d := range sinks[1].got {
				if d.err != nil || d.env.Tag != i || d.env.Size != sizes[i] || !bytes.Equal(d.data, payloadFor(i, sizes[i])) {
					t.Fatalf("message %d (%d bytes): tag %d size %d err %v", i, sizes[i], d.env.Tag, d.env.Size, d.err)
				}
			}
		})
	}
}

func TestTransportTruncatedFetchKeepsStreamInStep(t *testing.T) {
	ts, sinks := node(t, 2, func(c *Config) { c.DisableCMA = true })
	sinks[1].cap = 1000
	done := make(sent, 2)
	ep := ts[0].Endpoint(1)
	ep.Send(transport.Envelope{Src: 0, Size: 500 << 10}, payloadFor(1, 500<<10), false, done)
	ep.Send(transport.Envelope{Src: 0, Tag: 1, Size: 300 << 10}, payloadFor(2, 300<<10), false, done)
	drive(t, ts, func() bool { return sinks[1].count(true) == 2 })
	if !bytes.Equal(sinks[1].got[0].data, payloadFor(1, 500<<10)[:1000]) || !bytes.Equal(sinks[1].got[1].data, payloadFor(2, 300<<10)[:1000]) {
		t.Fatal("truncated fetches got the wrong bytes")
	}
}

func TestTransportBurstThroughFullRing(t *testing.T) {
	ts, sinks := node(t, 3, func(c *Config) { c.RingBytes = 4096 })
	const n = 3000
	done := make(sent, 2*n)
	for from := 1; from <= 2; from++ {
		ep := ts[from].Endpoint(0)
		for i := range n {
			ep.Send(transport.Envelope{Src: from, Tag: i, Size: 40}, payloadFor(i+from, 40), false, done)
		}
	}
	drive(t, ts, func() bool { return sinks[0].count(true) == 2*n })
	next := map[int]int{}
	for _, d := range sinks[0].got {
		if d.env.Tag != next[d.env.Src] || !bytes.Equal(d.data, payloadFor(d.env.Tag+d.env.Src, 40)) {
			t.Fatalf("from %d: got tag %d, want %d", d.env.Src, d.env.Tag, next[d.env.Src])
		}
		next[d.env.Src]++
	}
}

func TestTransportCorruptRingLosesPeer(t *testing.T) {
	ts, sinks := node(t, 2, nil)
	p := ts[1].peers[0]
	copy(p.rx.data, bytes.Repeat([]byte{0xff}, 64))
	ts[1].Poll()
	if len(sinks[1].lost) != 1 || !errors.Is(sinks[1].lost[0], transport.ErrCorrupt) {
		t.Fatalf("lost = %v, want one ErrCorrupt", sinks[1].lost)
	}
	done := make(sent, 1)
	ts[1].Endpoint(0).Send(transport.Envelope{Src: 1}, nil, false, done)
	if err := <-done; err == nil {
		t.Fatal("send to a lost peer succeeded")
	}
	// The corrupt ring is not read again: polling finds nothing to do, so a waiting rank
	// goes to sleep (and checks deaths and deadlines) instead of spinning on the fault.
	for i := range 100 {
		if ts[1].Poll() {
			t.Fatalf("poll %d after the loss reported progress", i)
		}
	}
	if ts[1].hasWork() {
		t.Fatal("a lost peer's corrupt ring still counts as work")
	}
	if len(sinks[1].lost) != 1 {
		t.Fatalf("lost reported %d times", len(sinks[1].lost))
	}
}

// TestFetchAfterLossCompletes: an announced message matched after its sender was lost completes with
// the loss instead of waiting for data that will never come (Fetch and lose race for the
// list of fetches; whichever comes second must see the other).
func TestFetchAfterLossCompletes(t *testing.T) {
	ts, _ := node(t, 2, func(c *Config) { c.DisableCMA = true })
	an := &announcement{p: ts[1].peers[0], size: 1 << 20, cookie: 1, proto: protoPipe}
	ts[1].peers[0].lose(errors.New("test: peer gone"))
	done := make(sent, 1)
	an.Fetch(make([]byte, 1<<20), done)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("fetch from a lost peer succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fetch from a lost peer never completed")
	}
}

// TestCloseCompletesPending: what a transport still holds when it closes — a large send
// nobody matched, a matched receive whose data never came, records queued behind a full
// ring — completes with transport.ErrClosed.
func TestCloseCompletesPending(t *testing.T) {
	ts, _ := node(t, 2, func(c *Config) { c.DisableCMA = true })
	large := make(sent, 1)
	ts[0].Endpoint(1).Send(transport.Envelope{Src: 0, Size: 1 << 20}, make([]byte, 1<<20), false, large)
	fetch := make(sent, 1)
	an := &announcement{p: ts[0].peers[1], size: 1 << 20, cookie: 7, proto: protoPipe}
	an.Fetch(make([]byte, 1<<20), fetch)
	// Fill the ring towards rank 1, which never polls, until sends queue.
	queued := make(sent, 1<<14)
	for range cap(queued) {
		ts[0].Endpoint(1).Send(transport.Envelope{Src: 0, Size: 1000}, make([]byte, 1000), false, queued)
		if ts[0].peers[1].queued.Load() > 0 {
			break
		}
	}
	if ts[0].peers[1].queued.Load() == 0 {
		t.Fatal("the ring never filled")
	}
	if err := ts[0].Close(); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]sent{"large send": large, "fetch": fetch} {
		select {
		case err := <-ch:
			if !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("%s ended with %v, want ErrClosed", name, err)
			}
		default:
			t.Fatalf("%s still pending after Close", name)
		}
	}
	var closed int
	for len(queued) > 0 {
		if err := <-queued; errors.Is(err, transport.ErrClosed) {
			closed++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if closed == 0 {
		t.Fatal("no queued send ended with ErrClosed")
	}
}

func TestSleepIsWokenBySend(t *testing.T) {
	ts, sinks := node(t, 2, nil)
	woke := make(chan struct{})
	go func() {
		for sinks[1].count(true) == 0 {
			ts[1].Sleep(10*time.Second, func() bool { return false })
			ts[1].Poll()
		}
		close(woke)
	}()
	time.Sleep(20 * time.Millisecond)
	done := make(sent, 1)
	ts[0].Endpoint(1).Send(transport.Envelope{Src: 0, Size: 3}, []byte("hey"), false, done)
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("a sleeping receiver was not woken by a send")
	}
}

// TestBatchingOverdueAtSend: a sender that never blocks keeps Go's timers from running, so the
// send path itself publishes a batch held past the flush timeout. With one P busy spinning,
// the flush timer cannot fire before the second send (the runtime preempts a spinning
// goroutine only after 10ms); the first message must be visible right after it.
func TestBatchingOverdueAtSend(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ts, sinks := node(t, 2, func(c *Config) { c.BatchLimit, c.FlushTimeout = 100, time.Millisecond })
	ep := ts[0].Endpoint(1)
	done := make(sent, 4)
	ep.Send(transport.Envelope{Src: 0, Tag: 0, Size: 1}, []byte{0}, false, done)
	for start := time.Now(); time.Since(start) < 2*time.Millisecond; {
	}
	ep.Send(transport.Envelope{Src: 0, Tag: 1, Size: 1}, []byte{1}, false, done)
	ts[1].Poll()
	if n := sinks[1].count(false); n != 1 {
		t.Fatalf("%d messages visible after a send that found the batch overdue, want 1 (the overdue batch)", n)
	}
	drive(t, ts, func() bool { return sinks[1].count(true) == 2 }) // the second, by its timer
}

// TestBatching: with an aggregation limit, eager records stay invisible until the batch is
// full, the flush timeout passes, or something else is sent; every message still arrives, in
// order.
func TestBatching(t *testing.T) {
	ts, sinks := node(t, 2, func(c *Config) { c.BatchLimit, c.FlushTimeout = 4, 20*time.Millisecond })
	ep := ts[0].Endpoint(1)
	done := make(sent, 16)
	for i := range 3 {
		ep.Send(transport.Envelope{Src: 0, Tag: i, Size: 1}, []byte{byte(i)}, false, done)
	}
	if ts[1].Poll() || sinks[1].count(false) != 0 {
		t.Fatal("a batch of 3 (limit 4) was visible before its flush")
	}
	drive(t, ts, func() bool { return sinks[1].count(true) == 3 }) // the timeout flushes it
	for i := 3; i < 7; i++ {
		ep.Send(transport.Envelope{Src: 0, Tag: i, Size: 1}, []byte{byte(i)}, false, done)
	}
	if !ts[1].Poll() || sinks[1].count(true) != 7 {
		t.Fatalf("a full batch was not published at once: %d arrived", sinks[1].count(true))
	}
	ep.Send(transport.Envelope{Src: 0, Tag: 7, Size: 1}, []byte{7}, false, done)
	ep.Send(transport.Envelope{Src: 0, Tag: 8, Size: 100 << 10}, make([]byte, 100<<10), false, done)
	drive(t, ts, func() bool { return sinks[1].count(true) == 9 })
	for i, d := range sinks[1].got {
		if d.env.Tag != i {
			t.Fatalf("message %d arrived as %d", d.env.Tag, i)
		}
	}
}

// At start every rank maps in its rings and bulk pipes to and from each local rank and the
// arena, so no message pays a page fault; the rings nobody uses (ring[i][i]) stay unallocated.
func TestPrefaultMapsWhatIsUsed(t *testing.T) {
	page := os.Getpagesize()
	// resident counts the pages of b (whole pages) that are in memory.
	resident := func(b []byte) int {
		if len(b) == 0 {
			return 0
		}
		vec := make([]byte, len(b)/page)
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
		if errno != 0 {
			t.Fatalf("mincore: %v", errno)
		}
		in := 0
		for _, v := range vec {
			in += int(v & 1)
		}
		return in
	}
	// Prefaulting is best effort: MADV_POPULATE_WRITE needs Linux 5.14, and qemu-user
	// accepts and ignores it. Where it populates nothing there is nothing to test.
	probe, err := unix.Mmap(-1, 0, 4*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(probe)
	if err := unix.Madvise(probe, unix.MADV_POPULATE_WRITE); err != nil || resident(probe) == 0 {
		t.Skipf("MADV_POPULATE_WRITE populates nothing here (%v): an old kernel or an emulator", err)
	}
	ts, _ := node(t, 2, nil)
	l, mem := &ts[0].lay, ts[0].seg.mem
	// pages counts the pages wholly inside [off, off+size) that are in memory, and all of them.
	pages := func(off, size int) (in, all int) {
		lo, hi := (off+page-1)/page*page, (off+size)/page*page
		return resident(mem[lo:hi]), (hi - lo) / page
	}
	for _, r := range []struct {
		what      string
		off, size int
		want      bool
	}{
		{"ring[0][1]", l.ring(0, 1), l.ringSize, true},
		{"ring[1][0]", l.ring(1, 0), l.ringSize, true},
		{"bulk[0][1]", l.bulk(0, 1), l.bulkSize, true},
		{"bulk[1][0]", l.bulk(1, 0), l.bulkSize, true},
		{"arena", l.collOff, l.commOff - l.collOff, true},
		{"communicator arenas", l.commOff, l.size - l.commOff, false},
		{"ring[0][0]", l.ring(0, 0), l.ringSize, false},
		{"bulk[1][1]", l.bulk(1, 1), l.bulkSize, false},
	} {
		in, all := pages(r.off, r.size)
		if all == 0 {
			t.Fatalf("%s holds no whole page", r.what)
		}
		if r.want && in != all || !r.want && in != 0 {
			t.Errorf("%s: %d of %d pages in memory, want %v", r.what, in, all, map[bool]string{true: "all", false: "none"}[r.want])
		}
	}
}
