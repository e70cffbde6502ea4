package shm

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/view"
)

// The arena's layout: each half of each slot begins with the owner's stamp, and its data
// follows in the same line.
func TestArenaLayout(t *testing.T) {
	const n, slot = 3, 256
	mem := make([]byte, n*slot)
	a := newArena(nil, 1, n, new(atomic.Uint64), mem, slot)
	for i := range n {
		for h := range 2 {
			a.round = uint64(h)
			want := i*slot + h*slot/2
			if a.stamps[i][h] != view.Uint64At(mem, want) {
				t.Errorf("stamp of rank %d half %d is not the word at %d", i, h, want)
			}
			if &a.Slot(i)[0] != &mem[want+arenaStamp] {
				t.Errorf("data of rank %d half %d does not start at %d", i, h, want+arenaStamp)
			}
		}
	}
	if a.HalfSize() != slot/2-arenaStamp {
		t.Errorf("HalfSize %d, want %d", a.HalfSize(), slot/2-arenaStamp)
	}
}

// Ranks as goroutines over one heap arena, each round writing its slot, arriving, waiting for
// the phase and checking every slot, with a second phase in some rounds, a barrier in others,
// and one rank that dawdles before reading: nobody ever reads a slot of the wrong round, and
// nobody leaves a barrier before every rank has entered it. Under -race the stamps
// must also order every write of a slot before every read of it.
func TestArenaPhasesKeepRoundsApart(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			const slot, rounds = 128, 300
			mem := make([]byte, n*slot)
			var counter atomic.Uint64
			var entered atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, n)
			deadline := time.Now().Add(20 * time.Second)
			for me := range n {
				a := newArena(nil, me, n, &counter, mem, slot)
				wg.Go(func() {
					wait := func(target uint64) error {
						for !a.Complete(target) {
							if time.Now().After(deadline) {
								return fmt.Errorf("rank %d: phase %d never completed", me, target)
							}
							runtime.Gosched() // more goroutines than CPUs: let the others arrive
						}
						return nil
					}
					for r := 1; r <= rounds; r++ {
						a.Round()
						s := a.Slot(me)
						for j := range s {
							s[j] = byte(r + me)
						}
						if err := wait(a.Arrive()); err != nil {
							errs <- err
							return
						}
						if me == r%n {
							time.Sleep(10 * time.Microsecond) // a slow reader
						}
						for i := range n {
							if got, want := a.Slot(i)[a.HalfSize()-1], byte(r+i); got != want {
								errs <- fmt.Errorf("rank %d round %d: slot %d holds %d, want %d", me, r, i, got, want)
								return
							}
						}
						if r%3 == 0 { // a second phase in the round, no new data
							if err := wait(a.Arrive()); err != nil {
								errs <- err
								return
							}
						}
						if r%5 == 0 { // a barrier: nobody leaves before all have entered
							entered.Add(1)
							target := a.ArriveBarrier()
							for !a.BarrierComplete(target) {
								runtime.Gosched()
							}
							if got, want := entered.Load(), int64(n*r/5); got < want {
								errs <- fmt.Errorf("rank %d left barrier %d when %d of %d had entered", me, r/5, got, want)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// The communicator arenas: each is taken by one claim until its holders have all given it
// back, a claim clears what the previous communicator left in it, and its slots lie inside
// its own part of the segment, apart from the node's arena and the other communicator arenas.
func TestCommArenas(t *testing.T) {
	const n = 3
	lay, err := newLayout(n, 64, 4096, 4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Transport{seg: &segment{mem: make([]byte, lay.size)}, lay: lay, peers: make([]*peer, n)}
	var got []int
	for range CommArenas {
		k := tr.ClaimCommArena(2)
		if k < 0 {
			t.Fatalf("claim %d of %d failed", len(got)+1, CommArenas)
		}
		got = append(got, k)
	}
	if k := tr.ClaimCommArena(2); k != -1 {
		t.Fatalf("claim with every arena taken gave %d", k)
	}
	// Use arena got[0] (a phase and a barrier), give it back once: still taken; twice: free,
	// and the next claim gets it cleared.
	a := tr.CommArena(got[0], []int{0, 2}, 1)
	if a.Size() != 2 || a.Rank() != 1 {
		t.Fatalf("arena size %d rank %d, want 2, 1", a.Size(), a.Rank())
	}
	a.Arrive()
	a.ArriveBarrier()
	tr.ReleaseCommArena(got[0])
	if k := tr.ClaimCommArena(2); k != -1 {
		t.Fatalf("claim with one holder left gave %d", k)
	}
	tr.ReleaseCommArena(got[0])
	if k := tr.ClaimCommArena(2); k != got[0] {
		t.Fatalf("claim after both holders left gave %d, want %d", k, got[0])
	}
	b := tr.CommArena(got[0], []int{0, 2}, 0)
	if b.stamps[1][0].Load() != 0 || b.counter.Load() != 0 {
		t.Errorf("a fresh claim left stamp %d, counter %d", b.stamps[1][0].Load(), b.counter.Load())
	}
	// Every slot of every communicator arena lies after the node's arena, inside its own
	// arena's part, and within the segment.
	for _, k := range got {
		c := tr.CommArena(k, []int{0, 1, 2}, 0)
		lo, hi := lay.commArena(k), lay.commArena(k)+lay.commSize
		if lo < lay.collSlotOff(n) || hi > lay.size {
			t.Fatalf("arena %d at [%d, %d) outside [%d, %d)", k, lo, hi, lay.collSlotOff(n), lay.size)
		}
		for i := range n {
			for h := range 2 {
				c.round = uint64(h)
				at := offsetIn(tr.seg.mem, c.Slot(i))
				if at < lo || at+len(c.Slot(i)) > hi {
					t.Errorf("arena %d slot %d half %d at [%d, %d) outside [%d, %d)", k, i, h, at, at+len(c.Slot(i)), lo, hi)
				}
			}
		}
	}
}

// offsetIn is the offset of part's first byte in mem.
func offsetIn(mem, part []byte) int {
	for i := range mem {
		if &mem[i] == &part[0] {
			return i
		}
	}
	return -1
}
