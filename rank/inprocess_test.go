package rank

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/memtransport"
)

// inProcess builds the worlds of an n-rank in-process job and runs f on each, as a rank on a
// goroutine of its own, then closes every world; it fails the test if a rank fails or the job
// does not end within a bound.
func inProcess(t *testing.T, n int, mcfg memtransport.Config, nodes []int, f func(w *World) error) {
	t.Helper()
	net, err := memtransport.New(n, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	worlds, err := InProcess(net, nodes, Config{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r, w := range worlds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = errors.Join(f(w), w.Close())
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for r := range n {
			net.Lose(r, errors.New("test timed out"))
		}
		t.Fatalf("the in-process job did not end; goroutines:\n%s", buf)
	}
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

var inProcessModes = []struct {
	name string
	cfg  memtransport.Config
}{
	{"pushed", memtransport.Config{}},
	{"polled", memtransport.Config{Polled: true}},
	{"polled-rendezvous", memtransport.Config{Polled: true, EagerLimit: -1}},
}

// TestInProcess: worlds built over the in-memory transport reach each other over it and
// themselves over the self path, exchange messages of every protocol around a ring, probe,
// run the world's barrier, and close.
func TestInProcess(t *testing.T) {
	for _, mode := range inProcessModes {
		for _, n := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/n%d", mode.name, n), func(t *testing.T) {
				inProcess(t, n, mode.cfg, nil, func(w *World) error {
					me := w.Rank()
					for r := range n {
						want := "mem"
						if r == me {
							want = "self"
						}
						if got := w.Path(r); got != want {
							return fmt.Errorf("path to %d is %q, want %q", r, got, want)
						}
					}
					if w.Size() != n || w.NodeCount() != n || len(w.LocalRanks()) != 1 {
						return fmt.Errorf("size %d, %d nodes, local ranks %v", w.Size(), w.NodeCount(), w.LocalRanks())
					}
					right, left := (me+1)%n, (me+n-1)%n
					for i, size := range []int{0, 5, 70 << 10, 2 << 20} {
						out, in := bytes.Repeat([]byte{byte(me + i)}, size), make([]byte, size)
						st, err := w.Sendrecv(0, out, right, i, in, left, i)
						if err != nil {
							return err
						}
						if st.Source != left || st.Tag != i || st.Bytes != size || !bytes.Equal(in, bytes.Repeat([]byte{byte(left + i)}, size)) {
							return fmt.Errorf("size %d: status %+v", size, st)
						}
					}
					s, err := w.Isend(0, right, 9, []byte{1, 2, 3}, true)
					if err != nil {
						return err
					}
					st, err := w.Probe(context.Background(), 0, left, AnyTag)
					if err != nil || st.Tag != 9 || st.Bytes != 3 {
						return fmt.Errorf("probe: %+v %v", st, err)
					}
					if _, err := w.Recv(0, left, 9, make([]byte, 3)); err != nil {
						return err
					}
					if _, err := s.Wait(context.Background()); err != nil {
						return err
					}
					return w.barrier(5)
				})
			})
		}
	}
}

// TestInProcessNodes: the node layout shapes the peer table; with a node of several ranks no
// rank has an arena (none has shared memory), with nodes of one rank every rank has its own.
func TestInProcessNodes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		nodes     []int
		nodeOf    []int // by rank
		leaders   []int // by node
		withArena bool
	}{
		{"each-alone", nil, []int{0, 1, 2}, []int{0, 1, 2}, true},
		{"two-and-one", []int{7, 7, 3}, []int{0, 0, 1}, []int{0, 2}, false},
		{"one-node", []int{1, 1, 1}, []int{0, 0, 0}, []int{0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inProcess(t, 3, memtransport.Config{}, tc.nodes, func(w *World) error {
				if w.NodeCount() != len(tc.leaders) {
					return fmt.Errorf("%d nodes, want %d", w.NodeCount(), len(tc.leaders))
				}
				for r, node := range tc.nodeOf {
					if w.NodeOf(r) != node || w.NodeLeader(node) != tc.leaders[node] {
						return fmt.Errorf("rank %d on node %d led by %d, want %d led by %d",
							r, w.NodeOf(r), w.NodeLeader(w.NodeOf(r)), node, tc.leaders[node])
					}
				}
				if got := w.NodeArena() != nil; got != tc.withArena {
					return fmt.Errorf("arena %v, want %v", got, tc.withArena)
				}
				return nil
			})
		})
	}
}

// TestInProcessClose: Close ends calls in progress with ErrClosed, as in any world, and an
// in-process world leaves the process's one Init alone.
func TestInProcessClose(t *testing.T) {
	initialized.Store(true) // as if this process had joined a job
	defer initialized.Store(false)
	for _, mode := range inProcessModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			inProcess(t, 2, mode.cfg, nil, func(w *World) error {
				if w.Rank() == 1 {
					return nil
				}
				r, err := w.Irecv(0, 1, 0, make([]byte, 8))
				if err != nil {
					return err
				}
				go func() {
					time.Sleep(10 * time.Millisecond)
					w.Close()
				}()
				if _, err := r.Wait(context.Background()); !errors.Is(err, ErrClosed) {
					return fmt.Errorf("receive pending at Close: %v", err)
				}
				if err := w.Send(0, 1, 0, nil, false); !errors.Is(err, ErrClosed) {
					return fmt.Errorf("send after Close: %v", err)
				}
				return nil
			})
		})
	}
	if !initialized.Load() {
		t.Fatal("closing an in-process world reset the process's Init")
	}
}

// TestInProcessPeerLost: a rank waiting on a peer that the network loses gets ErrPeerLost
// naming it, whether deliveries are pushed or polled (the driver's Check reports it).
func TestInProcessPeerLost(t *testing.T) {
	for _, mode := range inProcessModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			net, err := memtransport.New(2, mode.cfg)
			if err != nil {
				t.Fatal(err)
			}
			worlds, err := InProcess(net, nil, Config{})
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				time.Sleep(10 * time.Millisecond)
				net.Lose(1, errors.New("killed"))
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := worlds[0].Irecv(0, 1, 0, make([]byte, 8))
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Wait(ctx)
			var pl *PeerLostError
			if !errors.As(err, &pl) || pl.Rank != 1 {
				t.Fatalf("receive from a lost peer: %v", err)
			}
			var wg sync.WaitGroup
			for _, w := range worlds {
				wg.Add(1)
				go func() { defer wg.Done(); w.Close() }() // each fails its final barrier, promptly
			}
			wg.Wait()
		})
	}
}

func TestInProcessBadArguments(t *testing.T) {
	if _, err := InProcess(nil, nil, Config{}); err == nil {
		t.Error("no network: no error")
	}
	net, _ := memtransport.New(2, memtransport.Config{})
	if _, err := InProcess(net, []int{0}, Config{}); err == nil {
		t.Error("a layout of the wrong length: no error")
	}
	if _, err := InProcess(net, nil, Config{Transport: "carrier-pigeon"}); err == nil {
		t.Error("a bad config: no error")
	}
	ws, err := InProcess(net, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InProcess(net, nil, Config{}); err == nil {
		t.Error("a network joined twice: no error")
	}
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.Close() }()
	}
	wg.Wait()
}
