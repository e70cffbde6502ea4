package comm

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/rank"
)

// Comm is a communicator: a group of ranks with its own matching context, so traffic on one
// communicator never matches receives on another. A *Comm is safe for concurrent use by
// several goroutines (see the package documentation for the exact guarantees).
type Comm struct {
	w     *rank.World
	ctx   uint32 // point-to-point context; ctx+1 carries the collectives
	rank  int
	size  int
	group []int       // comm rank → world rank; nil for the world (identity)
	index map[int]int // world rank → comm rank; nil for the world
	state *worldState
	// node is where the ranks run, for the node-aware collectives (node.go); nil: they run
	// point to point.
	node *nodeView
	// closed: Close was called; every later call fails with ErrClosed.
	closed atomic.Bool
}

// worldState is shared by every communicator of the process.
type worldState struct {
	mu sync.Mutex
	// nextCtx is the lowest context pair (pair k is contexts 2k and 2k+1) this process has
	// not used. New communicators take the maximum over their members (see Split).
	nextCtx uint32
	// shared: the world is node-aware (its nodes have arenas), so derived communicators may
	// be too. The same at every rank of the job.
	shared bool
}

// Config chooses how ranks talk. The zero value means the defaults, with the environment
// (GORUN_TRANSPORT, GORUN_EAGER_LIMIT, GORUN_SPIN, GORUN_CONNECT_TIMEOUT) filling what is not
// set.
type Config struct {
	// Transport forces the path to peers: "auto" (the default: shared memory within a node,
	// TCP between nodes), "shm", "unix" (Unix-domain sockets within a node) or "tcp".
	Transport string
	// EagerLimit is the largest message (bytes) sockets send eagerly.
	EagerLimit int
	// Spin is how long a waiting rank polls before sleeping; negative: never. Zero: spin
	// briefly when every local rank has a CPU, never when the node is oversubscribed.
	Spin time.Duration
	// ConnectTimeout bounds start-up (default 60s).
	ConnectTimeout time.Duration
}

// Init joins the job described by the environment that gorun, Hydra or Slurm set, and returns
// the world communicator. Without a launcher the world has one rank. Call it once per process.
func Init() (*Comm, error) { return InitWith(Config{}) }

// InitWith is Init with explicit settings.
func InitWith(cfg Config) (*Comm, error) {
	w, err := rank.Init(rank.Config{
		Transport:      cfg.Transport,
		EagerLimit:     cfg.EagerLimit,
		Spin:           cfg.Spin,
		ConnectTimeout: cfg.ConnectTimeout,
	})
	if err != nil {
		return nil, err
	}
	return worldComm(w), nil
}

// worldComm returns the world communicator over w (also for comm's in-process tests).
func worldComm(w *rank.World) *Comm {
	// The world has context pair 0 (contexts 0 and 1); derived communicators take 2k, 2k+1.
	c := &Comm{w: w, ctx: 0, rank: w.Rank(), size: w.Size(), state: &worldState{nextCtx: 1}}
	c.setupWorldNode()
	c.state.shared = c.node != nil
	return c
}

// Rank is this rank's number in the communicator, 0 ≤ Rank < Size.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of ranks in the communicator.
func (c *Comm) Size() int { return c.size }

// Close leaves the communicator. For the world communicator it is collective: it returns once
// every rank has called Close, then ends the connections and tells the launcher; no
// communicator may be used afterwards. Closing a derived communicator is local: it gives back
// this rank's hold on the communicator's shared memory, which is freed once every rank of
// the node holding it has closed it. Close is idempotent.
func (c *Comm) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if c.group == nil {
		return c.w.Close()
	}
	if c.node != nil {
		c.node.arena.Release()
	}
	return nil
}

func (c *Comm) isWorld() bool { return c.group == nil }

// Abort ends the whole job with exit status code, like MPI_Abort: the launcher is told to take
// every rank down, and this process exits. It does not return.
func (c *Comm) Abort(code int) {
	c.w.Abort(code, fmt.Sprintf("rank %d of %d called Abort(%d)", c.rank, c.size, code))
}

// worldRank translates a rank of c (already checked to be in range) to a world rank.
func (c *Comm) worldRank(r int) int {
	if c.group == nil || r == rank.AnySource {
		return r
	}
	return c.group[r]
}

// commRank translates a world rank to a rank of c (-1 if it is not a member).
func (c *Comm) commRank(w int) int {
	if c.index == nil {
		return w
	}
	if r, ok := c.index[w]; ok {
		return r
	}
	return -1
}

// check validates the communicator and a peer rank (allowing AnySource where anySource).
func (c *Comm) check(peer int, anySource bool) error {
	if c == nil {
		return fmt.Errorf("%w: nil communicator", ErrClosed)
	}
	if c.closed.Load() || c.w.Closed() { // this communicator, or the world under it
		return ErrClosed
	}
	if anySource && peer == AnySource {
		return nil
	}
	if peer < 0 || peer >= c.size {
		return fmt.Errorf("%w: %d not in [0, %d)", ErrRank, peer, c.size)
	}
	return nil
}

func checkTag(tag int, anyTag bool) error {
	if anyTag && tag == AnyTag {
		return nil
	}
	if tag < 0 || tag > MaxTag {
		return fmt.Errorf("%w: %d (want 0..%d)", ErrTag, tag, MaxTag)
	}
	return nil
}

// MaxTag is the largest tag a message may carry.
const MaxTag = 1<<31 - 1
