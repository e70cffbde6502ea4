package shm

import (
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/view"
)

// Arena is the node's collective area, for collectives that use shared memory directly
// instead of point-to-point messages: the root of a broadcast writes once and every local
// rank reads; in an allreduce each local rank reduces its own part of everybody's data in
// place and then all read the result.
//
//	collOff   | arrivals u64 (every local rank adds 1 per phase) | pad to line |
//	+line     | slot of local rank 0: half 0 | half 1 |
//	          | slot of local rank 1: ...              |
//
// Synchronisation is a phase counter: in every phase each local rank adds 1 to arrivals, and
// phase k is complete once arrivals reaches n·k. Every rank goes through the phases in the
// same order and waits for phase k to complete before it arrives at phase k+1, so the counter
// never mixes phases. Data written before arriving is visible to every rank that has seen the
// phase complete (the add and the load are sequentially consistent).
//
// Slots have two halves, used by alternate data rounds (Round): a round's half is written
// only after the previous round's phase has completed, which every rank reached only after it
// finished reading the round before, so a slow reader never sees its data overwritten.
//
// Only one goroutine per process uses the arena at a time (the world communicator's
// collectives, which MPI orders).
type Arena struct {
	t        *Transport // nil for a node of one rank (SoloArena)
	me, n    int
	arrivals *atomic.Uint64
	slots    [][2][]byte // by local rank: the two halves
	phase    uint64      // phases this rank has arrived at
	round    uint64      // data rounds begun
}

// SoloArena is the arena of a node with one rank: private memory, and phases that complete
// at once. It lets that rank run the same collective algorithms as the ranks of other nodes.
func SoloArena(half int) *Arena {
	var n atomic.Uint64
	return &Arena{me: 0, n: 1, arrivals: &n, slots: [][2][]byte{{make([]byte, half), make([]byte, half)}}}
}

// Arena returns the node's collective arena.
func (t *Transport) Arena() *Arena {
	if t.arena != nil {
		return t.arena
	}
	lay, mem := &t.lay, t.seg.mem
	a := &Arena{t: t, me: t.me, n: lay.nlocal, arrivals: view.Uint64At(mem, lay.collOff)}
	half := lay.collSlot / 2
	for i := range lay.nlocal {
		off := lay.collSlotOff(i)
		a.slots = append(a.slots, [2][]byte{mem[off : off+half : off+half], mem[off+half : off+2*half : off+2*half]})
	}
	t.arena = a
	return a
}

// Rank and Size are this rank's place among the local ranks and their number.
func (a *Arena) Rank() int { return a.me }
func (a *Arena) Size() int { return a.n }

// HalfSize is how many bytes a rank can put in its slot per round.
func (a *Arena) HalfSize() int { return len(a.slots[0][0]) }

// Round begins a data round: from now on Slot gives the other half.
func (a *Arena) Round() { a.round++ }

// Slot is the current round's half of local rank i's slot. Only its owner writes it, before
// arriving at a phase; everyone reads it after the phase completes.
func (a *Arena) Slot(i int) []byte { return a.slots[i][a.round%2] }

// Arrive marks this rank's arrival at its next phase and returns the arrival count that
// completes the phase. The last rank to arrive rings every local rank that sleeps.
func (a *Arena) Arrive() uint64 {
	a.phase++
	n := uint64(a.n)
	if a.arrivals.Add(1) == n*a.phase && a.t != nil {
		for _, p := range a.t.list {
			if p.sleeping.Load() != 0 && p.sleeping.CompareAndSwap(1, 0) {
				ring(p.bell)
			}
		}
	}
	return n * a.phase
}

// Complete reports whether the phase that Arrive returned target for is complete.
func (a *Arena) Complete(target uint64) bool { return a.arrivals.Load() >= target }
