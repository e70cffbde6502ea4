// Package rank is one rank's runtime: it joins the job through the launcher's bootstrap
// (PMI), builds the peer table from every rank's card, chooses a transport per peer, matches
// arriving messages to receives, and drives progress while a caller waits.
//
// It knows nothing of element types or communicators: comm gives it byte buffers, world
// ranks and context ids.
package rank

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/memtransport"
	"github.com/gorun-hpc/gorun/internal/pmi"
	"github.com/gorun-hpc/gorun/topology"
	"github.com/gorun-hpc/gorun/transport"
	"github.com/gorun-hpc/gorun/transport/shm"
	"github.com/gorun-hpc/gorun/transport/sock"
)

// World is this rank's view of the job. It is safe for concurrent use by any number of
// goroutines (MPI_THREAD_MULTIPLE).
type World struct {
	cfg   Config
	rank  int
	size  int
	peers []peer // by world rank; peers[rank] is this rank (the self path)
	node  nodeInfo
	// machine is this node's hardware as discovered at start-up; nil in an in-process world.
	machine *topology.Machine

	m *matcher

	// poller is the transport that needs driving (shared memory), or nil if every path makes
	// progress on its own goroutines (sockets).
	poller transport.Poller
	// driving is held by the one goroutine that drives poller; waiters counts goroutines in
	// wait; handoff passes the driving role to a waiter when the driver leaves.
	driving atomic.Bool
	waiters atomic.Int32
	handoff chan struct{}
	spin    time.Duration // see drive
	yields  int

	pmi        *pmi.Client // nil for a world of one
	rendezvous *rendezvous // rank 0's key-value service, for launchers that have none
	nets       []*sock.Net
	shm        *shm.Transport     // nil unless a peer is reached through shared memory
	mem        *memtransport.Port // an in-process world's transport (inprocess.go), else nil

	requests   sync.Pool // *Request: blocking calls, and collectives' nonblocking ones
	arenaWaits sync.Pool // *arenaWait

	refusedCount atomic.Int64 // connections dropped because they failed the handshake

	// Closing (close.go). closing is set once, when Close begins, and closingCh is closed
	// right after; users counts the goroutines inside an entry section (enter … leave).
	closing   atomic.Bool
	closingCh chan struct{}
	users     atomic.Int32
	closeOnce sync.Once
	closeErr  error
}

// peer is how to reach one rank.
type peer struct {
	ep   transport.Endpoint
	card card
	path string // "self", "shm", "unix" or "tcp"
}

// nodeInfo is what this rank knows about its node.
type nodeInfo struct {
	id         string
	localRanks []int // world ranks on this node, ascending; includes this rank
	nodeCount  int
	usableCPUs int // CPUs the node's ranks may keep busy
	// oversubscribed: more local ranks than usable CPUs, so a waiting rank must not spin.
	oversubscribed bool
}

// Rank is this rank's number in the world.
func (w *World) Rank() int { return w.rank }

// Size is the number of ranks in the world.
func (w *World) Size() int { return w.size }

// LocalRanks returns the world ranks that share this rank's node (ascending).
func (w *World) LocalRanks() []int { return w.node.localRanks }

// NodeCount returns the number of distinct nodes in the job.
func (w *World) NodeCount() int { return w.node.nodeCount }

// NodeOf returns the node index (0..NodeCount-1, in order of first rank) of world rank r.
func (w *World) NodeOf(r int) int { return w.peers[r].card.nodeIndex }

// Machine returns this node's hardware as the rank discovered it at start-up, or nil where it
// is unknown (an in-process world).
func (w *World) Machine() *topology.Machine { return w.machine }

// CPUs returns the CPUs world rank r may run on, as it reported them at start-up (empty when
// unknown: an in-process world).
func (w *World) CPUs(r int) topology.CPUSet { return w.peers[r].card.cpus }

// Path returns the transport that carries messages to world rank r: "self", "shm", "unix" or
// "tcp" ("mem" in an in-process world, see InProcess).
func (w *World) Path(r int) string { return w.peers[r].path }

var initialized atomic.Bool

// Init joins the job. A process joins at most once.
func Init(cfg Config) (*World, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("gorun: %w", err)
	}
	if !initialized.CompareAndSwap(false, true) {
		return nil, errors.New("gorun: Init called twice in one process")
	}
	w := newWorld(cfg)
	if err := w.bootstrap(); err != nil {
		w.teardown()
		initialized.Store(false)
		return nil, fmt.Errorf("gorun: %w", err)
	}
	return w, nil
}

// newWorld returns a World with its runtime parts made and no peers yet: what Init's bootstrap
// and InProcess then connect.
func newWorld(cfg Config) *World {
	w := &World{cfg: cfg, m: newMatcher(), handoff: make(chan struct{}, 1), closingCh: make(chan struct{})}
	w.requests.New = func() any { return newRequest(w) }
	return w
}

// rendezvousLinger bounds how long rank 0 keeps serving its rendezvous after its own Close,
// for the other ranks to finalize.
const rendezvousLinger = 10 * time.Second

// Abort ends the whole job with exit status code, like MPI_Abort: it asks the launcher to take
// the job down (PMI abort) and exits this process. It does not return.
func (w *World) Abort(code int, msg string) {
	if w.pmi != nil {
		w.pmi.Abort(code, msg)
		if w.rendezvous != nil {
			w.rendezvous.close(0)
		}
	}
	os.Exit(code)
}

// Contexts reserved by the runtime; communicators get the ones below.
const closeContext = ^uint32(0)

// barrier is a dissemination barrier over zero-byte messages on context ctx: in round k each
// rank signals rank+2^k and waits for rank-2^k, so after ceil(log2 n) rounds every rank has
// heard, directly or not, from every other.
func (w *World) barrier(ctx uint32) error {
	for dist, round := 1, 0; dist < w.size; dist, round = dist*2, round+1 {
		to, from := (w.rank+dist)%w.size, (w.rank-dist+w.size)%w.size
		s, err := w.Isend(ctx, to, round, nil, false)
		if err != nil {
			return err
		}
		if _, err := w.Recv(ctx, from, round, nil); err != nil {
			return err
		}
		if _, err := s.Wait(context.Background()); err != nil {
			return err
		}
	}
	return nil
}

// checkRank reports a world rank out of range.
func (w *World) checkRank(r int) error {
	if r < 0 || r >= w.size {
		return fmt.Errorf("%w: %d not in [0, %d)", ErrRank, r, w.size)
	}
	return nil
}

// checkSource is checkRank for a receive's source, which may be AnySource.
func (w *World) checkSource(r int) error {
	if r == AnySource {
		return nil
	}
	return w.checkRank(r)
}

// Isend starts sending buf to world rank dst. With sync set it completes only once the
// receiver has matched the message.
func (w *World) Isend(ctx uint32, dst, tag int, buf []byte, sync bool) (*Request, error) {
	if err := w.checkRank(dst); err != nil {
		return nil, err
	}
	if err := w.enter(ctx); err != nil {
		return nil, err
	}
	r := w.requests.Get().(*Request)
	r.reset(opSend, ctx, dst, tag, buf)
	w.startSend(r, sync)
	w.leave()
	return r, nil
}

func (w *World) startSend(r *Request, sync bool) {
	env := transport.Envelope{Src: w.rank, Ctx: r.ctx, Tag: r.tag, Size: len(r.buf)}
	w.peers[r.peer].ep.Send(env, r.buf, sync, r)
}

// Irecv starts receiving into buf from world rank src (or AnySource).
func (w *World) Irecv(ctx uint32, src, tag int, buf []byte) (*Request, error) {
	if err := w.checkSource(src); err != nil {
		return nil, err
	}
	if err := w.enter(ctx); err != nil {
		return nil, err
	}
	r := w.requests.Get().(*Request)
	r.reset(opRecv, ctx, src, tag, buf)
	w.m.post(r)
	w.leave()
	return r, nil
}

// Send is a blocking Isend + Wait that allocates nothing.
func (w *World) Send(ctx uint32, dst, tag int, buf []byte, sync bool) error {
	if err := w.checkRank(dst); err != nil {
		return err
	}
	if err := w.enter(ctx); err != nil {
		return err
	}
	r := w.requests.Get().(*Request)
	r.reset(opSend, ctx, dst, tag, buf)
	w.startSend(r, sync)
	w.leave()
	_, err := r.Wait(context.Background())
	w.recycle(r)
	return err
}

// Recv is a blocking Irecv + Wait that allocates nothing.
func (w *World) Recv(ctx uint32, src, tag int, buf []byte) (Status, error) {
	if err := w.checkSource(src); err != nil {
		return Status{}, err
	}
	if err := w.enter(ctx); err != nil {
		return Status{}, err
	}
	r := w.requests.Get().(*Request)
	r.reset(opRecv, ctx, src, tag, buf)
	w.m.post(r)
	w.leave()
	st, err := r.Wait(context.Background())
	w.recycle(r)
	return st, err
}

// recycle returns a blocking call's request to the pool, unless it is still in flight (its
// wait ended early because Close began): the transport that holds it completes it later,
// and a request in the pool must belong to nobody.
func (w *World) recycle(r *Request) {
	if r.Done() {
		w.requests.Put(r)
	}
}

// Probe blocks until a message that a receive from src with tag would get has arrived, and
// describes it without receiving it.
func (w *World) Probe(ctx context.Context, cctx uint32, src, tag int) (Status, error) {
	if err := w.checkSource(src); err != nil {
		return Status{}, err
	}
	if err := w.enter(cctx); err != nil {
		return Status{}, err
	}
	r := newRequest(w)
	r.reset(opProbe, cctx, src, tag, nil)
	w.m.post(r)
	w.leave()
	st, err := r.Wait(ctx)
	if err != nil && !r.Done() {
		r.Cancel()
	}
	return st, err
}

// Iprobe reports whether such a message has arrived, after driving progress once.
func (w *World) Iprobe(cctx uint32, src, tag int) (Status, bool, error) {
	if err := w.checkSource(src); err != nil {
		return Status{}, false, err
	}
	if err := w.enter(cctx); err != nil {
		return Status{}, false, err
	}
	defer w.leave()
	w.pollOnce()
	st, ok := w.m.peek(cctx, src, tag)
	if !ok && src != AnySource {
		if err := w.m.isLost(src); err != nil {
			return Status{}, false, err
		}
	}
	return st, ok, nil
}

// Sendrecv sends send to dst and receives into recv from src at the same time, so two ranks
// exchanging with each other never deadlock. It allocates nothing.
func (w *World) Sendrecv(ctx uint32, send []byte, dst, stag int, recv []byte, src, rtag int) (Status, error) {
	if err := w.checkRank(dst); err != nil {
		return Status{}, err
	}
	if err := w.checkSource(src); err != nil {
		return Status{}, err
	}
	if err := w.enter(ctx); err != nil {
		return Status{}, err
	}
	rr := w.requests.Get().(*Request)
	rr.reset(opRecv, ctx, src, rtag, recv)
	w.m.post(rr)
	sr := w.requests.Get().(*Request)
	sr.reset(opSend, ctx, dst, stag, send)
	w.startSend(sr, false)
	w.leave()
	_, serr := sr.Wait(context.Background())
	st, rerr := rr.Wait(context.Background())
	w.recycle(sr)
	w.recycle(rr)
	if rerr != nil {
		return st, rerr
	}
	return st, serr
}

// Refused is how many connections this rank dropped because they failed the handshake.
func (w *World) Refused() int64 { return w.refusedCount.Load() }

// Stats sums, per path ("self", "shm", "unix", "tcp"), what this rank has sent since Init.
func (w *World) Stats() map[string]transport.Counters {
	out := map[string]transport.Counters{}
	for _, p := range w.peers {
		c, ok := p.ep.(transport.Counted)
		if !ok {
			continue
		}
		got, sum := c.Sent(), out[p.path]
		sum.Messages += got.Messages
		sum.Bytes += got.Bytes
		out[p.path] = sum
	}
	return out
}

// arenaWait is one wait for an arena phase or barrier: what drive's done function needs, kept
// in a struct from a pool so that a collective's phases allocate nothing (a closure and its
// parked word, passed through the Poller interface, would escape at every phase).
type arenaWait struct {
	w       *World
	a       *shm.Arena
	target  uint64
	barrier bool  // target is BarrierComplete's, not Complete's
	failed  error // a local rank's loss, which ended the wait
	parked  atomic.Uint32
	done    func() bool // aw.complete, as a function value made once
}

func (aw *arenaWait) complete() bool {
	if aw.barrier && aw.a.BarrierComplete(aw.target) || !aw.barrier && aw.a.Complete(aw.target) {
		return true
	}
	if aw.w.m.anyLost.Load() {
		aw.failed = aw.w.localLoss()
		return aw.failed != nil
	}
	return false
}

// waitArena blocks until a's phase (barrier: its barrier) reaches target, driving progress
// meanwhile (spin, yield, sleep, as any wait). It fails if a local rank is lost, since the
// phase could then never complete.
func (w *World) waitArena(a *shm.Arena, target uint64, barrier bool) error {
	aw, _ := w.arenaWaits.Get().(*arenaWait)
	if aw == nil {
		aw = &arenaWait{w: w}
		aw.done = aw.complete
	}
	aw.a, aw.target, aw.barrier, aw.failed = a, target, barrier, nil
	err := w.wait(context.Background(), aw.done, nil, &aw.parked, true)
	if err == nil {
		err = aw.failed
	}
	aw.a = nil
	w.arenaWaits.Put(aw)
	return err
}

// localLoss returns the loss of a rank on this node, or nil.
func (w *World) localLoss() error {
	for _, r := range w.node.localRanks {
		if err := w.m.isLost(r); err != nil {
			return err
		}
	}
	return nil
}

// NodeArena is the node's collective arena as the node-aware collective algorithms use it
// (it satisfies collective.Node): slots, rounds, and phases that wait like any other wait.
type NodeArena struct {
	w *World
	a *shm.Arena
	k int // the communicator arena held, or -1 (the node's arena, or a private one)
}

// NodeArena returns the arena of this rank's node: the shared one, or for a node of one
// rank a private one (its phases complete at once), so that every rank of a job runs the
// same collective algorithms. It is nil when the node's ranks talk over sockets (forced), in
// which case no node of the job has an arena.
func (w *World) NodeArena() *NodeArena {
	switch {
	case w.mem != nil && w.node.nodeCount < w.size:
		return nil // in-process: a node of several ranks has no shared memory, so none has
	case len(w.node.localRanks) == 1 && w.cfg.Transport != "tcp" && w.cfg.Transport != "unix":
		return &NodeArena{w: w, a: shm.SoloArena(shm.DefaultCollSlot / 2), k: -1}
	case w.shm == nil:
		return nil
	}
	return &NodeArena{w: w, a: w.shm.Arena(), k: -1}
}

// CommArena returns an arena for the local ranks of a derived communicator, members (world
// ranks on this node, this rank among them, in the communicator's order): a private one if
// this rank is the only member, else the shared communicator arena k, which the first member
// took with ClaimCommArena. Release gives this rank's hold on it back.
func (w *World) CommArena(k int, members []int) *NodeArena {
	if len(members) == 1 {
		return &NodeArena{w: w, a: shm.SoloArena(shm.CommSlot / 2), k: -1}
	}
	local := make([]int, len(members))
	me := 0
	for i, m := range members {
		local[i] = slices.Index(w.node.localRanks, m)
		if m == w.rank {
			me = i
		}
	}
	return &NodeArena{w: w, a: w.shm.CommArena(k, local, me), k: k}
}

// ClaimCommArena takes a free communicator arena of this node for holders local ranks (see
// shm.ClaimCommArena) and returns its number, or -1 if none is free or the node has no
// shared memory.
func (w *World) ClaimCommArena(holders int) int {
	if w.shm == nil {
		return -1
	}
	return w.shm.ClaimCommArena(holders)
}

// ReleaseCommArena gives back this rank's hold on communicator arena k (see ClaimCommArena).
func (w *World) ReleaseCommArena(k int) {
	if k >= 0 && w.shm != nil {
		w.shm.ReleaseCommArena(k)
	}
}

// Release gives back this rank's hold on a communicator arena (nothing for a private one or
// the node's arena). The arena must not be used after.
func (n *NodeArena) Release() { n.w.ReleaseCommArena(n.k) }

func (n *NodeArena) Rank() int         { return n.a.Rank() }
func (n *NodeArena) Size() int         { return n.a.Size() }
func (n *NodeArena) HalfSize() int     { return n.a.HalfSize() }
func (n *NodeArena) Round()            { n.a.Round() }
func (n *NodeArena) Slot(i int) []byte { return n.a.Slot(i) }

// Phase arrives and waits until every local rank has.
func (n *NodeArena) Phase() error {
	target := n.a.Arrive()
	if n.a.Size() == 1 {
		return nil
	}
	return n.w.waitArena(n.a, target, false)
}

// Barrier returns once every local rank has entered it.
func (n *NodeArena) Barrier() error {
	target := n.a.ArriveBarrier()
	if n.a.Size() == 1 {
		return nil
	}
	return n.w.waitArena(n.a, target, true)
}

// NodeLeader returns the lowest world rank of node (an index of NodeOf).
func (w *World) NodeLeader(node int) int {
	for r, p := range w.peers {
		if p.card.nodeIndex == node {
			return r
		}
	}
	return -1
}
