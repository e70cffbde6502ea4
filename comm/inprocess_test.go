package comm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/memtransport"
	"github.com/gorun-hpc/gorun/rank"
)

// In-process tests: the ranks of a job are goroutines of the test binary, joined by the
// in-memory twin of the transports (internal/memtransport), so that comm's matching,
// communicators and collectives run under the race detector in milliseconds. The same
// semantics are checked with real rank processes by the end-to-end tests (e2e_test.go).

// inProcRanks are the job sizes every in-process test runs at (odd ones included).
var inProcRanks = []int{1, 2, 3, 4, 8}

// jobShape is how an in-process job's ranks are joined.
type jobShape struct {
	name  string
	net   memtransport.Config
	nodes func(n int) []int // the node of each rank; nil: every rank alone on its node
}

// jobShapes: deliveries pushed by reader goroutines (as sockets do) or polled by the waiting
// rank (as shared memory is); every rank its own node (the world's collectives then run
// hierarchically, every rank its node's leader) or several ranks to a node (no shared memory:
// the world's collectives run point to point); the default eager limit, or every message by
// rendezvous.
var jobShapes = []jobShape{
	{"pushed", memtransport.Config{}, nil},
	{"polled", memtransport.Config{Polled: true}, nil},
	{"polled-one-node", memtransport.Config{Polled: true}, func(n int) []int { return make([]int, n) }},
	{"pushed-rendezvous-two-nodes", memtransport.Config{EagerLimit: -1}, func(n int) []int {
		nodes := make([]int, n)
		for r := range nodes {
			nodes[r] = 2 * r / n
		}
		return nodes
	}},
}

// jobTimeout bounds one in-process job: a hang fails its test with every goroutine's stack
// instead of stalling the binary. Jobs take milliseconds; the bound allows for the race
// detector on a loaded machine.
const jobTimeout = 20 * time.Second

// errJobAborted is what the ranks of a job that is being given up see (as the cause of a lost
// peer): once one rank has failed, so that the others do not wait for it for ever.
var errJobAborted = errors.New("in-process job aborted")

// runJob runs f on every rank of an n-rank in-process job of the given shape, each rank on a
// goroutine of its own with its world communicator, and closes every world after f returns
// (Close is collective). It fails the test with each rank's error (the first failure aborts
// the job, so the other ranks do not wait for the failed one), if the job does not end within
// jobTimeout, or if it leaves goroutines behind.
func runJob(t *testing.T, n int, shape jobShape, f func(c *comm.Comm) error) {
	t.Helper()
	runJobOn(t, n, shape, func(_ *memtransport.Network, c *comm.Comm) error { return f(c) })
}

// runJobOn is runJob for ranks that also need the job's network (to lose a rank).
func runJobOn(t *testing.T, n int, shape jobShape, f func(net *memtransport.Network, c *comm.Comm) error) {
	t.Helper()
	before := runtime.NumGoroutine()
	net, err := memtransport.New(n, shape.net)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []int
	if shape.nodes != nil {
		nodes = shape.nodes(n)
	}
	cs, err := comm.InProcess(net, nodes, rank.Config{})
	if err != nil {
		t.Fatal(err)
	}
	abort := sync.OnceFunc(func() {
		for r := range n {
			net.Lose(r, errJobAborted)
		}
	})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f(net, c)
			if err != nil {
				abort()
			}
			if cerr := c.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("close: %w", cerr)
			}
			errs[r] = err
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(jobTimeout):
		stacks := allStacks()
		abort()
		for _, c := range cs {
			go c.Close() // ends every call still blocked, even on the rank itself
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("%d-rank job still running after %v; goroutines:\n%s", n, jobTimeout, stacks)
	}
	failed := false
	for r, err := range errs {
		if err != nil && !errors.Is(err, errJobAborted) {
			t.Errorf("rank %d of %d: %v", r, n, err)
			failed = true
		}
	}
	if !failed {
		for r, err := range errs {
			if err != nil {
				t.Errorf("rank %d of %d: %v", r, n, err)
			}
		}
	}
	checkGoroutines(t, before)
}

// forEachJob runs f as a subtest on every job shape at every job size.
func forEachJob(t *testing.T, f func(c *comm.Comm) error) {
	t.Helper()
	forJobs(t, jobShapes, inProcRanks, f)
}

// forJobs runs f as a subtest on the given shapes and sizes.
func forJobs(t *testing.T, shapes []jobShape, sizes []int, f func(c *comm.Comm) error) {
	t.Helper()
	for _, shape := range shapes {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/n%d", shape.name, n), func(t *testing.T) { runJob(t, n, shape, f) })
		}
	}
}

// checkGoroutines fails the test if more goroutines are running than before it began, once
// the ones that are ending have had a moment to.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines left behind:\n%s", runtime.NumGoroutine()-before, allStacks())
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func allStacks() string {
	buf := make([]byte, 4<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// rankErrorf makes a rank's error.
func rankErrorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// inSequence runs steps in order, stopping at the first error, which it names.
func inSequence(steps ...namedStep) func(c *comm.Comm) error {
	return func(c *comm.Comm) error {
		for _, s := range steps {
			if err := s.f(c); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		return nil
	}
}

type namedStep struct {
	name string
	f    func(c *comm.Comm) error
}

// The payload checks: a message's bytes are a window of one pseudo-random template whose
// start depends on the message (its seed), so that a message delivered to the wrong receive,
// or bytes out of place, are caught. Windows are copied and compared whole (copy, bytes.Equal)
// rather than byte by byte, which under the race detector would cost more than the messaging.
const (
	patternMax   = 4 << 20 // the longest message checked
	patternSeeds = 1 << 12 // seeds below this have distinct windows
)

var patternTemplate = sync.OnceValue(func() []byte {
	rng := rand.New(rand.NewPCG(13, 7))
	t := make([]byte, patternMax+patternSeeds)
	for i := 0; i < len(t); i += 8 {
		binary.LittleEndian.PutUint64(t[i:], rng.Uint64())
	}
	return t
})

// patternWindow is the expected content of an n-byte message with seed (7919 is odd, so distinct
// seeds below patternSeeds start at distinct offsets).
func patternWindow(n, seed int) []byte {
	off := seed * 7919 % patternSeeds
	return patternTemplate()[off : off+n]
}

// pattern fills b with the message of seed and returns it.
func pattern(b []byte, seed int) []byte {
	copy(b, patternWindow(len(b), seed))
	return b
}

// samePattern reports the first byte of b that is not the message of seed.
func samePattern(b []byte, seed int, what string) error {
	want := patternWindow(len(b), seed)
	if bytes.Equal(b, want) {
		return nil
	}
	for i := range b {
		if b[i] != want[i] {
			return fmt.Errorf("%s: byte %d of %d is %d, want %d", what, i, len(b), b[i], want[i])
		}
	}
	return nil
}
