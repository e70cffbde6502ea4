package collective

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// memWorld is an in-process N-rank transport for testing algorithms under the race detector:
// each rank has a mailbox; Send copies and never blocks; Recv takes the first message from
// src with tag, in send order.
type memWorld struct {
	mu    sync.Mutex
	cond  *sync.Cond
	boxes [][]memMsg
}

type memMsg struct {
	src, tag int
	data     []byte
}

type memComm struct {
	w    *memWorld
	rank int
}

func newMemWorld(n int) []*memComm {
	w := &memWorld{boxes: make([][]memMsg, n)}
	w.cond = sync.NewCond(&w.mu)
	cs := make([]*memComm, n)
	for i := range cs {
		cs[i] = &memComm{w: w, rank: i}
	}
	return cs
}

func (c *memComm) Rank() int { return c.rank }
func (c *memComm) Size() int { return len(c.w.boxes) }

func (c *memComm) Send(buf []byte, dst, tag int) error {
	if dst < 0 || dst >= c.Size() {
		return fmt.Errorf("send to rank %d of %d", dst, c.Size())
	}
	c.w.mu.Lock()
	c.w.boxes[dst] = append(c.w.boxes[dst], memMsg{c.rank, tag, append([]byte(nil), buf...)})
	c.w.mu.Unlock()
	c.w.cond.Broadcast()
	return nil
}

func (c *memComm) Recv(buf []byte, src, tag int) (int, error) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	for {
		box := c.w.boxes[c.rank]
		for i, m := range box {
			if m.src == src && m.tag == tag {
				if len(m.data) > len(buf) {
					return 0, fmt.Errorf("rank %d: %d-byte message from %d into %d bytes", c.rank, len(m.data), src, len(buf))
				}
				copy(buf, m.data)
				c.w.boxes[c.rank] = append(box[:i:i], box[i+1:]...)
				return len(m.data), nil
			}
		}
		c.w.cond.Wait()
	}
}

func (c *memComm) Sendrecv(send []byte, dst, stag int, recv []byte, src, rtag int) (int, error) {
	if err := c.Send(send, dst, stag); err != nil {
		return 0, err
	}
	return c.Recv(recv, src, rtag)
}

// runRanks runs f on every rank of an n-rank memWorld and fails the test on any error or if
// the ranks do not finish within a bound (a hang in an algorithm).
func runRanks(t *testing.T, n int, f func(c Comm) error) {
	t.Helper()
	cs := newMemWorld(n)
	errs := make(chan error, n)
	for _, c := range cs {
		go func() { errs <- f(c) }()
	}
	timeout := time.After(20 * time.Second)
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatalf("%d ranks did not finish", n)
		}
	}
}
