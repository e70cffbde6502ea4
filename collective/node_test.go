package collective

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// An in-process twin of a node's shared memory (transport/shm's arena), so that the
// node-aware algorithms run under the race detector: slots are heap memory, and a phase is a
// mutex and a condition variable, which order the writes before a phase with the reads after
// it as the arena's atomics do.
type memNodeShared struct {
	mu       sync.Mutex
	cond     *sync.Cond
	arrivals uint64
	slots    [][2][]byte
}

type memNode struct {
	s           *memNodeShared
	rank        int
	round, step uint64
}

func newMemNode(size, half int) *memNodeShared {
	s := &memNodeShared{slots: make([][2][]byte, size)}
	s.cond = sync.NewCond(&s.mu)
	for i := range s.slots {
		s.slots[i] = [2][]byte{alloc(half), alloc(half)}
	}
	return s
}

func (m *memNode) Rank() int         { return m.rank }
func (m *memNode) Size() int         { return len(m.s.slots) }
func (m *memNode) HalfSize() int     { return len(m.s.slots[0][0]) }
func (m *memNode) Round()            { m.round++ }
func (m *memNode) Slot(i int) []byte { return m.s.slots[i][m.round%2] }

// Barrier is a phase: the in-process twin has only one way to wait for every rank.
func (m *memNode) Barrier() error { return m.Phase() }

func (m *memNode) Phase() error {
	m.step++
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arrivals++
	s.cond.Broadcast()
	for s.arrivals < m.step*uint64(len(s.slots)) {
		s.cond.Wait()
	}
	return nil
}

// awareComm is a memComm that knows its nodes: layout[r] is the node of rank r.
type awareComm struct {
	Comm
	node    *memNode
	layout  []int
	leaders []int // node → its lowest rank
	lead    Comm  // the leaders' communicator, at a leader
}

// The engine finds NodeAware by a run-time type assertion (Engine.aware): without this check a
// method of awareComm that drifted from the interface would quietly send every node-aware
// test down the point-to-point algorithms.
var (
	_ NodeAware = (*awareComm)(nil)
	_ Comm      = (*awareComm)(nil)
	_ Node      = (*memNode)(nil)
)

func (a *awareComm) Node() Node             { return a.node }
func (a *awareComm) Nodes() int             { return len(a.leaders) }
func (a *awareComm) NodeOf(r int) int       { return a.layout[r] }
func (a *awareComm) Leader(node int) int    { return a.leaders[node] }
func (a *awareComm) Leaders() (Comm, error) { return a.lead, nil }

// nodeWrap returns a wrap for runStepsOn that makes every rank node-aware under layout, with
// slots of half bytes per round.
func nodeWrap(layout []int, half int) func(Comm) Comm {
	var leaders []int
	count := map[int]int{}
	local := make([]int, len(layout))
	for r, node := range layout {
		if node == len(leaders) {
			leaders = append(leaders, r)
		}
		local[r] = count[node]
		count[node]++
	}
	shared := make([]*memNodeShared, len(leaders))
	for node := range leaders {
		shared[node] = newMemNode(count[node], half)
	}
	leaderComms := newMemWorld(len(leaders))
	return func(c Comm) Comm {
		r := c.Rank()
		a := &awareComm{Comm: c, node: &memNode{s: shared[layout[r]], rank: local[r]}, layout: layout, leaders: leaders}
		if leaders[layout[r]] == r {
			a.lead = leaderComms[layout[r]]
		}
		return a
	}
}

// nodeLayouts: one node; nodes of uneven sizes in block order (what the hierarchical
// algorithms expect of a launcher); a node of one rank.
func nodeLayouts(n int) [][]int {
	one := make([]int, n)
	out := [][]int{one}
	if n >= 3 {
		blocks := make([]int, n)
		for r := range blocks {
			blocks[r] = min(r*3/n, 2) // three nodes of about n/3
		}
		out = append(out, blocks)
	}
	if n >= 2 {
		lone := make([]int, n)
		lone[n-1] = 1
		out = append(out, lone)
	}
	return out
}

// TestNodeAwareMatrix runs the reference matrix through the node-aware algorithms (forced as
// "shm") on one node and across several, with small slots so that every message takes
// several rounds.
func TestNodeAwareMatrix(t *testing.T) {
	colls := []Coll{CollBcast, CollReduce, CollAllreduce, CollGather, CollScatter, CollAllgather, CollAlltoall, CollReduceScatter}
	for _, n := range []int{1, 2, 3, 5, 8} {
		for li, layout := range nodeLayouts(n) {
			for _, coll := range colls {
				t.Run(fmt.Sprintf("n%d/layout%d/%v", n, li, coll), func(t *testing.T) {
					e := forcedEngine(t, coll, algoShm)
					runStepsOn(t, n, nodeWrap(layout, 256), matrixSteps(e, coll, n))
				})
			}
		}
	}
}

// TestNodeAwareLargeCounts: pieces larger than the small-reduction limit take the
// reduce-scatter-in-place path; slots smaller than the message take several rounds.
func TestNodeAwareLargeCounts(t *testing.T) {
	for _, layout := range [][]int{{0, 0, 0, 0}, {0, 0, 1, 1, 1}} {
		n := len(layout)
		e := forcedEngine(t, CollAllreduce, algoShm)
		var steps []step
		for i, ec := range elemCases {
			steps = append(steps, allreduceStep(e, ec, Sum, (1<<20)/ec.size, i, i%2 == 0))
			steps = append(steps, reduceStep(e, ec, Max, (64<<10)/ec.size+3, n-1, i))
			steps = append(steps, bcastStep(e, ec, (1<<20)/ec.size, n-1, i))
		}
		runStepsOn(t, n, nodeWrap(layout, 64<<10), steps)
	}
}

// TestNodeAwareBarrierSynchronizes: no rank leaves a node-aware barrier, on one node or
// across several, before every rank has entered it.
func TestNodeAwareBarrierSynchronizes(t *testing.T) {
	e := forcedEngine(t, CollBarrier, algoShm)
	for _, n := range []int{1, 2, 3, 5, 8} {
		for _, layout := range nodeLayouts(n) {
			var entered [5]atomic.Int32
			wrap := nodeWrap(layout, 256)
			runRanks(t, n, func(c Comm) error {
				c = wrap(c)
				for round := range entered {
					entered[round].Add(1)
					if err := e.Barrier(c); err != nil {
						return err
					}
					if got := entered[round].Load(); got != int32(n) {
						return fmt.Errorf("rank %d left barrier %d when %d of %d had entered (layout %v)", c.Rank(), round, got, n, layout)
					}
				}
				return nil
			})
		}
	}
}

// TestSmallNodeBcastGoesPointToPoint: unless forced, a broadcast on one node below
// nodeBcastMin takes the tree (no arena phase), and one at nodeBcastMin the arena.
func TestSmallNodeBcastGoesPointToPoint(t *testing.T) {
	e, err := newEngine(defaultTable(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	for _, size := range []int{0, 8, nodeBcastMin - 1, nodeBcastMin} {
		wrap := nodeWrap([]int{0, 0, 0}, 4<<10)
		runRanks(t, n, func(c Comm) error {
			c = wrap(c)
			buf := make([]byte, size)
			if c.Rank() == 1 {
				for i := range buf {
					buf[i] = byte(i)
				}
			}
			if err := e.Bcast(c, buf, 1); err != nil {
				return err
			}
			for i := range buf {
				if buf[i] != byte(i) {
					return fmt.Errorf("rank %d: byte %d of %d is %d", c.Rank(), i, size, buf[i])
				}
			}
			phases := c.(*awareComm).node.step
			if arena := size >= nodeBcastMin; arena != (phases > 0) {
				return fmt.Errorf("rank %d: %d-byte broadcast went through %d arena phases", c.Rank(), size, phases)
			}
			return nil
		})
	}
}
