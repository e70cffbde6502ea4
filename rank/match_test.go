package rank

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/pmi"
	"github.com/gorun-hpc/gorun/transport"
)

// testWorld is a World with only its matcher and self path: enough to test matching.
func testWorld() *World {
	w := &World{m: newMatcher(), handoff: make(chan struct{}, 1), size: 4}
	w.requests.New = func() any { return newRequest(w) }
	return w
}

func recv(w *World, ctx uint32, src, tag, n int) *Request {
	r := newRequest(w)
	r.reset(opRecv, ctx, src, tag, make([]byte, n))
	w.m.post(r)
	return r
}

func env(src, tag, size int) transport.Envelope {
	return transport.Envelope{Src: src, Tag: tag, Size: size}
}

func waitDone(t *testing.T, r *Request) (Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := r.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("request did not complete")
	}
	return st, err
}

func TestPostedReceivesMatchInPostingOrder(t *testing.T) {
	w := testWorld()
	a := recv(w, 0, AnySource, AnyTag, 8)
	b := recv(w, 0, 1, AnyTag, 8)
	w.m.Deliver(env(1, 5, 1), []byte{1}, nil)
	w.m.Deliver(env(1, 6, 1), []byte{2}, nil)
	stA, _ := waitDone(t, a)
	stB, _ := waitDone(t, b)
	if stA.Tag != 5 || stB.Tag != 6 {
		t.Fatalf("wildcard receive posted first got tag %d, second got %d", stA.Tag, stB.Tag)
	}
}

func TestUnexpectedMessagesKeepSendOrderPerSource(t *testing.T) {
	w := testWorld()
	for i := range 5 {
		w.m.Deliver(env(2, 9, 1), []byte{byte(i)}, nil)
		w.m.Deliver(env(3, 9, 1), []byte{byte(10 + i)}, nil)
	}
	for i := range 5 {
		r := recv(w, 0, 2, 9, 1)
		waitDone(t, r)
		if r.buf[0] != byte(i) {
			t.Fatalf("message %d from rank 2 arrived as %d", i, r.buf[0])
		}
	}
	r := recv(w, 0, AnySource, 9, 1)
	st, _ := waitDone(t, r)
	if st.Source != 3 || r.buf[0] != 10 {
		t.Fatalf("wildcard after draining rank 2 got %d from %d", r.buf[0], st.Source)
	}
}

func TestContextsAreSeparate(t *testing.T) {
	w := testWorld()
	other := recv(w, 1, AnySource, AnyTag, 4)
	w.m.Deliver(transport.Envelope{Src: 1, Ctx: 0, Size: 1}, []byte{7}, nil)
	if other.Done() {
		t.Fatal("a message on context 0 matched a receive on context 1")
	}
	r := recv(w, 0, AnySource, AnyTag, 4)
	waitDone(t, r)
	if !other.Cancel() {
		t.Fatal("could not cancel the unmatched receive")
	}
	if _, err := waitDone(t, other); !errors.Is(err, ErrCanceled) {
		t.Fatalf("canceled receive: %v", err)
	}
}

func TestTruncation(t *testing.T) {
	w := testWorld()
	w.m.Deliver(env(1, 0, 10), bytes.Repeat([]byte{3}, 10), nil)
	r := recv(w, 0, 1, 0, 4)
	st, err := waitDone(t, r)
	var te *TruncateError
	if !errors.As(err, &te) || te.Size != 10 || te.Cap != 4 || st.Bytes != 10 || !bytes.Equal(r.buf, []byte{3, 3, 3, 3}) {
		t.Fatalf("truncated receive: %v %+v %v", err, st, r.buf)
	}
}

type fakeRendezvous struct {
	data    []byte
	fetched chan []byte
}

func (f *fakeRendezvous) Fetch(dst []byte, c transport.Completion) {
	copy(dst, f.data)
	f.fetched <- dst
	c.Complete(nil)
}

func TestRendezvousFetchedOnlyWhenMatched(t *testing.T) {
	w := testWorld()
	rv := &fakeRendezvous{data: []byte("large"), fetched: make(chan []byte, 1)}
	w.m.Deliver(env(1, 4, 5), nil, rv)
	select {
	case <-rv.fetched:
		t.Fatal("fetched before any receive matched")
	default:
	}
	st, ok := w.m.peek(0, 1, 4)
	if !ok || st.Bytes != 5 {
		t.Fatalf("probe: %v %+v", ok, st)
	}
	r := recv(w, 0, 1, 4, 16)
	waitDone(t, r)
	if string(r.buf[:5]) != "large" || len(<-rv.fetched) != 5 {
		t.Fatal("rendezvous data not delivered")
	}
}

func TestProbeThenReceiveGetsThatMessage(t *testing.T) {
	w := testWorld()
	p := newRequest(w)
	p.reset(opProbe, 0, AnySource, AnyTag, nil)
	w.m.post(p)
	w.m.Deliver(env(2, 8, 3), []byte("abc"), nil)
	st, err := waitDone(t, p)
	if err != nil || st.Source != 2 || st.Tag != 8 || st.Bytes != 3 {
		t.Fatalf("probe: %+v %v", st, err)
	}
	r := recv(w, 0, st.Source, st.Tag, st.Bytes)
	waitDone(t, r)
	if string(r.buf) != "abc" {
		t.Fatalf("receive after probe got %q", r.buf)
	}
}

func TestLostPeerFailsItsReceivesAndWildcards(t *testing.T) {
	w := testWorld()
	from1 := recv(w, 0, 1, 0, 1)
	from2 := recv(w, 0, 2, 0, 1)
	any := recv(w, 0, AnySource, 0, 1)
	w.m.Lost(1, errors.New("connection reset"))
	for _, r := range []*Request{from1, any} {
		_, err := waitDone(t, r)
		var pl *PeerLostError
		if !errors.As(err, &pl) || pl.Rank != 1 {
			t.Fatalf("receive: %v, want PeerLostError for rank 1", err)
		}
	}
	if from2.Done() {
		t.Fatal("a receive from a live peer failed")
	}
	if _, err := waitDone(t, recv(w, 0, 1, 0, 1)); !errors.Is(err, ErrPeerLost) {
		t.Fatalf("a new receive from the lost peer: %v", err)
	}
}

func TestWaitAny(t *testing.T) {
	w := testWorld()
	a, b := recv(w, 0, 1, 0, 1), recv(w, 0, 1, 1, 1)
	go func() {
		time.Sleep(10 * time.Millisecond)
		w.m.Deliver(env(1, 1, 1), []byte{9}, nil)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	i, err := WaitAny(ctx, []*Request{nil, a, b})
	if err != nil || i != 2 {
		t.Fatalf("WaitAny = %d, %v; want 2", i, err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	w := testWorld()
	r := recv(w, 0, 1, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want the deadline", err)
	}
	w.m.Deliver(env(1, 0, 1), []byte{1}, nil)
	if _, err := waitDone(t, r); err != nil {
		t.Fatalf("the request was not usable after the deadline: %v", err)
	}
}

func TestCardRoundTrip(t *testing.T) {
	c := card{pid: 42, node: "host/boot id", usable: 2, tcpPort: 5000, tcpIPs: []string{"10.0.0.1", "fd00::2", "127.0.0.1"}, unix: "@gorun-x-1-ab"}
	back, err := parseCard(c.String())
	if err != nil || back.pid != c.pid || back.node != c.node || back.tcpPort != 5000 || !slices.Equal(back.tcpIPs, c.tcpIPs) || back.unix != c.unix || back.usable != 2 {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

// FuzzParseCard: a card comes from another process through the launcher; decoding arbitrary
// text never panics, and what decodes re-encodes to an equivalent card.
func FuzzParseCard(f *testing.F) {
	f.Add("2,42,aG9zdA,0-1,2,4000/10.1.2.3/127.0.0.1,@x")
	f.Add("2,1,,0,1,,")
	f.Add("1,1,a,b,c,d,e")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCard(s)
		if err != nil {
			return
		}
		again, err := parseCard(c.String())
		if err != nil || again.pid != c.pid || again.node != c.node || again.tcpPort != c.tcpPort || !slices.Equal(again.tcpIPs, c.tcpIPs) {
			t.Fatalf("re-encoded card %q does not decode the same: %v", c.String(), err)
		}
	})
}

func TestLongValuesAreSplitAcrossKeys(t *testing.T) {
	s, err := pmi.NewServer(pmi.ServerConfig{Size: 1, KVSName: "kvs"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	go s.ServeConn(context.Background(), 0, a)
	c, err := pmi.NewClient(b, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Finalize()
	long := strings.Repeat("0123456789/", 300) // 3300 bytes: five keys
	for _, v := range []string{"short", long, "parts:7"} {
		if err := putLong(c, "card", v); err != nil {
			t.Fatal(err)
		}
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		got, err := getLong(c, "card")
		if err != nil || got != v {
			t.Fatalf("round trip of %d bytes: got %d bytes, %v", len(v), len(got), err)
		}
	}
}
