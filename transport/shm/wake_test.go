package shm

import (
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transporttest"
	"github.com/gorun-hpc/gorun/transport"
)

// sleepUntilWoken runs tr's Sleep (with a long timeout) in a goroutine and returns once tr has
// declared itself asleep; the channel reports how long the sleep lasted.
func sleepUntilWoken(tr *Transport) <-chan time.Duration {
	woke := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		tr.Sleep(10*time.Second, func() bool { return false })
		woke <- time.Since(start)
	}()
	for tr.sleeping.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // into the wait, most likely; either way it must wake
	return woke
}

func expectWoken(t *testing.T, woke <-chan time.Duration, what string) {
	t.Helper()
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Errorf("%s", what)
		<-woke
	}
}

// fillRing fills the ring from ts[0] to ts[1] (which does not poll; a ring of 4096 bytes)
// with one-line records, then sends one of size bytes, which must queue.
func fillRing(t *testing.T, ts []*Transport, size int) {
	t.Helper()
	ep, p := ts[0].Endpoint(1), ts[0].peers[1]
	done := make(sent, 65)
	for i := range 4096 / 64 {
		ep.Send(transport.Envelope{Src: 0, Tag: i, Size: 8}, make([]byte, 8), false, done)
	}
	if p.queued.Load() != 0 {
		t.Fatal("a ring of 64 lines did not take 64 one-line records")
	}
	ep.Send(transport.Envelope{Src: 0, Tag: 64, Size: size}, make([]byte, size), false, done)
	if p.queued.Load() != 1 {
		t.Fatal("a full ring took another record")
	}
}

// A sender asleep with records queued behind a full ring is woken when its receiver makes
// room. (The receiver's quarter-ring publication inside release used to clear the sender's
// request and drop the report, so no one rang: the sender slept out its whole timeout.)
func TestSleepingSenderWokenForRoom(t *testing.T) {
	ts, _ := node(t, 2, func(c *Config) { c.RingBytes = 4096 })
	fillRing(t, ts, 8)
	woke := sleepUntilWoken(ts[0])
	ts[1].Poll() // takes a whole ring's worth: several quarter-ring publications
	expectWoken(t, woke, "the sleeping sender was not woken when its receiver made room")
}

// The receiver can clear a request for room that the sender made after it had already seen
// the head the receiver just published (the receiver stores head, the sender loads it, finds
// too little room and asks, the receiver loads the request and clears it). The sender must
// still be woken when more room comes: Sleep renews its request after declaring itself
// asleep. The interleaving is made here step by step; the clear is the receiver's store.
func TestSleepRenewsRequestForRoom(t *testing.T) {
	ts, _ := node(t, 2, func(c *Config) { c.RingBytes = 4096 })
	fillRing(t, ts, 1000) // the last needs 16 lines of room
	tx, rx := ts[0].peers[1], ts[1].peers[0]
	// The receiver takes one record and publishes one line of room.
	rec, ok, err := rx.rx.next()
	if !ok || err != nil {
		t.Fatalf("next: %v %v", ok, err)
	}
	if err := rx.handle(&rec); err != nil {
		t.Fatal(err)
	}
	rx.rx.release(rec)
	rx.rx.head.Store(rx.rx.pos) // the receiver's store of head (publish's first half)
	rx.rx.published = rx.rx.pos
	// The sender sees that head, finds too little room, and asks for more.
	if tx.writeQueued() {
		t.Fatal("a record of 16 lines was written into one line of room")
	}
	// The receiver's load of wantSpace (publish's second half) finds the new request and
	// clears it; the sender is awake, so there is no one to ring.
	if rx.rx.wantSpace.Load() == 0 {
		t.Fatal("the sender did not ask for room")
	}
	rx.rx.wantSpace.Store(0)
	woke := sleepUntilWoken(ts[0])
	ts[1].Poll() // makes room for everything
	expectWoken(t, woke, "the sleeping sender was not woken when its receiver made room after clearing its request")
}

// renewRequests asks again for room wherever this rank waits for it: the ring of a peer with
// records queued, the bulk pipe of a peer with streams waiting; not for a peer that is gone.
func TestRenewRequests(t *testing.T) {
	h := newHostileNode(t)
	h.t.renewRequests()
	if h.p.tx.wantSpace.Load() != 0 || h.p.bulkW.wantSpace.Load() != 0 {
		t.Fatal("requests for room with nothing waiting")
	}
	h.p.queued.Store(1)
	h.p.streams = []*largeSend{{payload: make([]byte, 1), done: &transporttest.Completion{}}}
	h.t.renewRequests()
	if h.p.tx.wantSpace.Load() != 1 || h.p.bulkW.wantSpace.Load() != 1 {
		t.Fatalf("requests for room: ring %d, bulk pipe %d, want 1 and 1", h.p.tx.wantSpace.Load(), h.p.bulkW.wantSpace.Load())
	}
	h.p.tx.wantSpace.Store(0)
	h.p.bulkW.wantSpace.Store(0)
	h.p.gone.Store(true)
	h.t.renewRequests()
	if h.p.tx.wantSpace.Load() != 0 || h.p.bulkW.wantSpace.Load() != 0 {
		t.Fatal("requests for room towards a peer that is gone")
	}
}
