package collective

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// memWorld is an in-process N-rank transport for testing algorithms under the race detector.
// It matches like MPI: a receive takes the oldest unmatched message from its source with its
// tag, and receives from one source with one tag match in the order they were posted. It is
// stricter than the real runtime in two ways that catch algorithm bugs: every send is
// synchronous (it completes only when a receive has matched it, so an algorithm that relies on
// buffering deadlocks here), and the data is copied from the sender's buffer at the moment of
// the match (so a sender that reuses its buffer too early corrupts the data, and the race
// detector sees it).
type memWorld struct {
	mu    sync.Mutex
	ranks []memQueues
	// abort is closed when a test gives up on a hung algorithm: every wait then fails, so no
	// goroutine is left behind.
	abort chan struct{}
}

// memQueues are one rank's unmatched operations, oldest first.
type memQueues struct {
	unexpected []*memReq // sends addressed to this rank
	posted     []*memReq // this rank's receives
}

// memReq is a send or a receive. For a send, peer is the sender's rank; for a receive, the
// source it wants.
type memReq struct {
	w         *memWorld
	peer, tag int
	buf       []byte
	done      chan struct{} // closed once n and err are set
	n         int
	err       error
}

var errMemAborted = errors.New("memWorld: aborted")

type memComm struct {
	w    *memWorld
	rank int
}

var (
	_ Comm    = (*memComm)(nil)
	_ Request = (*memReq)(nil)
)

func newMemWorld(n int) []*memComm {
	w := &memWorld{ranks: make([]memQueues, n), abort: make(chan struct{})}
	cs := make([]*memComm, n)
	for i := range cs {
		cs[i] = &memComm{w: w, rank: i}
	}
	return cs
}

func (c *memComm) Rank() int { return c.rank }
func (c *memComm) Size() int { return len(c.w.ranks) }

func (c *memComm) checkPeer(r, tag int) error {
	if r < 0 || r >= c.Size() || tag < 0 {
		return fmt.Errorf("memWorld: rank %d tag %d (of %d ranks)", r, tag, c.Size())
	}
	return nil
}

// match completes send s and receive r: the data moves now, from the sender's buffer.
func match(s, r *memReq) {
	r.n = copy(r.buf, s.buf)
	if len(s.buf) > len(r.buf) {
		r.err = fmt.Errorf("memWorld: %d-byte message from %d truncated to %d bytes", len(s.buf), s.peer, len(r.buf))
	}
	close(s.done)
	close(r.done)
}

func (c *memComm) Isend(buf []byte, dst, tag int) (Request, error) {
	if err := c.checkPeer(dst, tag); err != nil {
		return nil, err
	}
	s := &memReq{w: c.w, peer: c.rank, tag: tag, buf: buf, done: make(chan struct{})}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	q := &c.w.ranks[dst]
	for i, r := range q.posted {
		if r.peer == c.rank && r.tag == tag {
			q.posted = append(q.posted[:i:i], q.posted[i+1:]...)
			match(s, r)
			return s, nil
		}
	}
	q.unexpected = append(q.unexpected, s)
	return s, nil
}

func (c *memComm) Irecv(buf []byte, src, tag int) (Request, error) {
	if err := c.checkPeer(src, tag); err != nil {
		return nil, err
	}
	r := &memReq{w: c.w, peer: src, tag: tag, buf: buf, done: make(chan struct{})}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	q := &c.w.ranks[c.rank]
	for i, s := range q.unexpected {
		if s.peer == src && s.tag == tag {
			q.unexpected = append(q.unexpected[:i:i], q.unexpected[i+1:]...)
			match(s, r)
			return r, nil
		}
	}
	q.posted = append(q.posted, r)
	return r, nil
}

func (q *memReq) Wait() (int, error) {
	select {
	case <-q.done:
		return q.n, q.err
	case <-q.w.abort:
		return 0, errMemAborted
	}
}

func (c *memComm) Send(buf []byte, dst, tag int) error {
	q, err := c.Isend(buf, dst, tag)
	if err != nil {
		return err
	}
	_, err = q.Wait()
	return err
}

func (c *memComm) Recv(buf []byte, src, tag int) (int, error) {
	q, err := c.Irecv(buf, src, tag)
	if err != nil {
		return 0, err
	}
	return q.Wait()
}

func (c *memComm) Sendrecv(send []byte, dst, stag int, recv []byte, src, rtag int) (int, error) {
	rq, err := c.Irecv(recv, src, rtag)
	if err != nil {
		return 0, err
	}
	sq, err := c.Isend(send, dst, stag)
	if err != nil {
		return 0, errors.Join(err, waitAll([]Request{rq}))
	}
	_, serr := sq.Wait()
	n, rerr := rq.Wait()
	return n, errors.Join(rerr, serr)
}

// leftovers describes operations nobody matched: a stray message is a bug even when every
// rank got the right result.
func (w *memWorld) leftovers() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for r, q := range w.ranks {
		if len(q.unexpected) > 0 || len(q.posted) > 0 {
			s := q.unexpected
			if len(s) == 0 {
				s = q.posted
			}
			return fmt.Errorf("rank %d: %d unmatched sends to it, %d unmatched receives (first: peer %d tag %d)",
				r, len(q.unexpected), len(q.posted), s[0].peer, s[0].tag)
		}
	}
	return nil
}

// worldTimeout bounds one world's run: an algorithm that hangs fails its test instead of the
// whole test binary.
const worldTimeout = 60 * time.Second

// runWorld runs f on every rank of an n-rank memWorld and returns each rank's error. It fails
// the test if the ranks do not finish within worldTimeout (a hang), and then aborts the world
// so that no goroutine is left blocked.
func runWorld(t *testing.T, n int, f func(c Comm) error) []error {
	t.Helper()
	cs := newMemWorld(n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(c)
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(worldTimeout):
		close(cs[0].w.abort)
		<-finished
		t.Fatalf("%d ranks did not finish within %v", n, worldTimeout)
	}
	return errs
}

// runRanks is runWorld that fails the test on any rank's error or on messages left unmatched.
func runRanks(t *testing.T, n int, f func(c Comm) error) {
	t.Helper()
	var w *memWorld
	errs := runWorld(t, n, func(c Comm) error {
		if c.Rank() == 0 {
			w = c.(*memComm).w
		}
		return f(c)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := w.leftovers(); err != nil {
		t.Fatal(err)
	}
}
