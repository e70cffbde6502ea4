package comm_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/memtransport"
)

// Communicators in process: Split, Dup and SplitNode make groups with contexts of their own and
// translate ranks; Close ends what is pending; a lost peer is an error, not a hang.

func TestInProcessCommunicators(t *testing.T) {
	forEachJob(t, inSequence(
		namedStep{"split by parity, keys reversed", splitParity},
		namedStep{"split in three, nested", splitNested},
		namedStep{"dup is separate", dupIsSeparate},
		namedStep{"collectives on two communicators at once", concurrentCommunicators},
	))
}

// splitParity: colors by parity, keys reverse the order; ranks and traffic are translated;
// Undefined gets nil; a closed communicator refuses calls and the world goes on.
func splitParity(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	sub, err := c.Split(me%2, -me)
	if err != nil {
		return err
	}
	var members []int // my color's world ranks, as the new communicator orders them
	for r := n - 1; r >= 0; r-- {
		if r%2 == me%2 {
			members = append(members, r)
		}
	}
	if sub.Size() != len(members) || members[sub.Rank()] != me {
		return rankErrorf("rank %d got sub-rank %d of %d, want %d of %d", me, sub.Rank(), sub.Size(), (n-1-me)/2, len(members))
	}
	right, left := (sub.Rank()+1)%sub.Size(), (sub.Rank()-1+sub.Size())%sub.Size()
	got := []int64{-1}
	st, err := comm.Sendrecv(sub, []int64{int64(me)}, right, 0, got, left, 0)
	if err != nil {
		return err
	}
	if st.Source != left || got[0] != int64(members[left]) {
		return rankErrorf("ring in the split: source %d, payload world rank %d; want %d, %d", st.Source, got[0], left, members[left])
	}
	if p, err := sub.Path(right); err != nil || (right == sub.Rank()) != (p == "self") {
		return rankErrorf("path to sub-rank %d: %q %v", right, p, err)
	}
	none, err := c.Split(comm.Undefined, 0)
	if none != nil || err != nil {
		return rankErrorf("split with Undefined: %v, %v", none, err)
	}
	if err := sub.Close(); err != nil {
		return err
	}
	if err := comm.Send(sub, []byte{1}, 0, 0); !errors.Is(err, comm.ErrClosed) {
		return rankErrorf("send on a closed communicator: %v", err)
	}
	if err := sub.Barrier(); !errors.Is(err, comm.ErrClosed) {
		return rankErrorf("barrier on a closed communicator: %v", err)
	}
	return c.Barrier()
}

// splitNested: three colors with equal keys (order by rank), then a split of each of those;
// the grandchildren's ranks map back to the world, and their collectives agree.
func splitNested(c *comm.Comm) error {
	me := c.Rank()
	third, err := c.Split(me%3, 0)
	if err != nil {
		return err
	}
	defer third.Close()
	if third.Rank() != me/3 {
		return rankErrorf("rank %d is %d in its third, want %d", me, third.Rank(), me/3)
	}
	pair, err := third.Split(third.Rank()/2, third.Rank())
	if err != nil {
		return err
	}
	defer pair.Close()
	sum := []int64{0}
	if err := comm.Allreduce(pair, []int64{int64(me)}, sum, comm.Sum); err != nil {
		return err
	}
	// My pair: the ranks of my third whose third-rank/2 is mine.
	want := int64(0)
	for r := range c.Size() {
		if r%3 == me%3 && (r/3)/2 == (me/3)/2 {
			want += int64(r)
		}
	}
	if sum[0] != want {
		return rankErrorf("sum over my pair %d, want %d", sum[0], want)
	}
	return nil
}

// dupIsSeparate: a message on the duplicate never matches a receive on the parent, and the
// reverse, even with wildcards.
func dupIsSeparate(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	to, from := (me+1)%n, (me-1+n)%n
	d, err := c.Dup()
	if err != nil {
		return err
	}
	defer d.Close()
	if d.Size() != n || d.Rank() != me {
		return rankErrorf("dup: rank %d of %d", d.Rank(), d.Size())
	}
	s1, err := comm.Isend(d, []int32{1}, to, 7)
	if err != nil {
		return err
	}
	s2, err := comm.Isend(c, []int32{2}, to, 7)
	if err != nil {
		return err
	}
	v := []int32{0}
	if _, err := comm.Recv(c, v, comm.AnySource, comm.AnyTag); err != nil || v[0] != 2 {
		return rankErrorf("a receive on the parent got %d (%v), want the parent's message", v[0], err)
	}
	if _, err := comm.Recv(d, v, from, 7); err != nil || v[0] != 1 {
		return rankErrorf("the duplicate got %d (%v)", v[0], err)
	}
	return comm.WaitAll(s1, s2)
}

// concurrentCommunicators: two goroutines run collectives at once, each on a duplicate of its
// own, as the package documentation allows.
func concurrentCommunicators(c *comm.Comm) error {
	const rounds = 30
	ds := make([]*comm.Comm, 2)
	for i := range ds {
		var err error
		if ds[i], err = c.Dup(); err != nil {
			return err
		}
		defer ds[i].Close()
	}
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range rounds {
				got := make([]int64, 3)
				if err := comm.Allreduce(d, []int64{int64(i), int64(k), 1}, got, comm.Sum); err != nil {
					errs[i] = err
					return
				}
				if n := int64(d.Size()); got[0] != n*int64(i) || got[1] != n*int64(k) || got[2] != n {
					errs[i] = rankErrorf("communicator %d round %d: %v", i, k, got)
					return
				}
				buf := []int64{int64(k)}
				if err := comm.Bcast(d, buf, k%d.Size()); err != nil || buf[0] != int64(k) {
					errs[i] = rankErrorf("communicator %d bcast %d: %v %v", i, k, buf, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// TestInProcessSplitNode: SplitNode groups the ranks of a node, in world order.
func TestInProcessSplitNode(t *testing.T) {
	for _, shape := range jobShapes {
		for _, n := range inProcRanks {
			var layout []int
			if shape.nodes != nil {
				layout = shape.nodes(n)
			}
			t.Run(fmt.Sprintf("%s/n%d", shape.name, n), func(t *testing.T) {
				runJob(t, n, shape, func(c *comm.Comm) error {
					node, err := c.SplitNode()
					if err != nil {
						return err
					}
					defer node.Close()
					var want []int
					for r := range n {
						if layout == nil && r == c.Rank() || layout != nil && layout[r] == layout[c.Rank()] {
							want = append(want, r)
						}
					}
					got := make([]int64, node.Size())
					if err := comm.Allgather(node, []int64{int64(c.Rank())}, got); err != nil {
						return err
					}
					if len(got) != len(want) {
						return rankErrorf("node of %d ranks, want %v", len(got), want)
					}
					for i := range want {
						if got[i] != int64(want[i]) {
							return rankErrorf("node holds %v, want %v", got, want)
						}
					}
					return nil
				})
			})
		}
	}
}

// TestInProcessClose: the world's Close ends calls blocked in other goroutines and requests
// left pending with ErrClosed, refuses later calls, and is idempotent.
func TestInProcessClose(t *testing.T) {
	forJobs(t, jobShapes[:2], inProcRanks, func(c *comm.Comm) error {
		me, n := c.Rank(), c.Size()
		pending, err := comm.Irecv(c, make([]byte, 8), (me+1)%n, 77) // never sent
		if err != nil {
			return err
		}
		blocked := make(chan error, 1)
		go func() {
			_, err := comm.Recv(c, make([]byte, 8), comm.AnySource, 78) // never sent either
			blocked <- err
		}()
		time.Sleep(5 * time.Millisecond)
		if err := c.Close(); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		if _, err := pending.Wait(); !errors.Is(err, comm.ErrClosed) {
			return rankErrorf("request pending at Close: %v", err)
		}
		select {
		case err := <-blocked:
			if !errors.Is(err, comm.ErrClosed) {
				return rankErrorf("receive blocked at Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			return rankErrorf("a receive blocked at Close did not return")
		}
		for _, err := range []error{
			comm.Send(c, []byte{1}, 0, 0),
			errOf(comm.Irecv(c, []byte{1}, 0, 0)),
			errOf(comm.Probe(c, 0, 0)),
			c.Barrier(),
			comm.Allreduce(c, []int32{1}, []int32{0}, comm.Sum),
			errOf(c.Dup()),
		} {
			if !errors.Is(err, comm.ErrClosed) {
				return rankErrorf("call after Close: %v, want ErrClosed", err)
			}
		}
		return c.Close()
	})
}

// TestInProcessPeerLost: ranks blocked on a peer that dies get ErrPeerLost naming it (a
// wildcard receive too), promptly, under pushed and polled delivery; closing after that fails
// but does not hang.
func TestInProcessPeerLost(t *testing.T) {
	killed := errors.New("killed by the test")
	for _, shape := range jobShapes[:2] {
		t.Run(shape.name, func(t *testing.T) {
			runJobOn(t, 3, shape, func(net *memtransport.Network, c *comm.Comm) error {
				defer c.Close() // it fails (the final barrier cannot complete): not the test's point
				if err := c.Barrier(); err != nil {
					return err
				}
				switch c.Rank() {
				case 1:
					time.Sleep(10 * time.Millisecond)
					net.Lose(1, killed)
					return nil
				case 0:
					_, err := comm.Recv(c, make([]byte, 8), 1, 0)
					var pl *comm.PeerLostError
					if !errors.As(err, &pl) || pl.Rank != 1 || !errors.Is(err, killed) {
						return rankErrorf("receive from a dead peer: %v, want ErrPeerLost naming rank 1", err)
					}
				case 2:
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					r, err := comm.Irecv(c, make([]byte, 8), comm.AnySource, 0)
					if err != nil {
						return err
					}
					if _, err := r.WaitContext(ctx); !errors.Is(err, comm.ErrPeerLost) {
						return rankErrorf("wildcard receive when a peer dies: %v", err)
					}
					if err := comm.Send(c, make([]byte, 1<<20), 1, 0); !errors.Is(err, comm.ErrPeerLost) {
						return rankErrorf("send to a dead peer: %v", err)
					}
				}
				return nil
			})
		})
	}
}

// TestInProcessStats: messages to other ranks go over "mem", to oneself over "self", and are
// counted.
func TestInProcessStats(t *testing.T) {
	runJob(t, 2, jobShapes[0], func(c *comm.Comm) error {
		me := c.Rank()
		before := c.Stats()
		if _, err := comm.Sendrecv(c, make([]byte, 100), 1-me, 0, make([]byte, 100), 1-me, 0); err != nil {
			return err
		}
		if _, err := comm.Sendrecv(c, make([]byte, 10), me, 0, make([]byte, 10), me, 0); err != nil {
			return err
		}
		after := c.Stats()
		for path, bytes := range map[string]uint64{"mem": 100, "self": 10} {
			if got := after[path].Bytes - before[path].Bytes; got != bytes || after[path].Messages != before[path].Messages+1 {
				return rankErrorf("%s: %+v then %+v, want one more message of %d bytes", path, before[path], after[path], bytes)
			}
		}
		for r := range 2 {
			want := "mem"
			if r == me {
				want = "self"
			}
			if p, err := c.Path(r); p != want || err != nil {
				return rankErrorf("path to %d: %q %v, want %q", r, p, err, want)
			}
		}
		return nil
	})
}
