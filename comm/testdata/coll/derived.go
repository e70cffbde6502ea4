package main

import (
	"fmt"
	"sync"

	"github.com/gorun-hpc/gorun/comm"
)

// derived runs the collectives on derived communicators, which take shared memory of their
// own on each node (comm/node.go): the full check on the world's ranks in reverse order (so
// that a communicator's arena slots follow its ranks, not the node's), a shorter one on a Dup
// and on the halves of a Split by parity, then two communicators running collectives at the
// same time from two goroutines, and finally more communicators than a node has arenas for
// (the later ones run point to point), every one checked and closed.
func derived(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	rev, err := c.Split(0, n-1-me)
	check(err, "split reversed")
	typed[float64](c, floatOps)
	typed[int32](rev, intOps[:1])
	large(rev)
	dup, err := c.Dup()
	check(err, "dup")
	typed[float64](dup, floatOps[:1])
	half, err := c.Split(me%2, me)
	check(err, "split by parity")
	typed[int64](half, intOps[:1])

	// Concurrent collectives on two communicators of the same ranks.
	var wg sync.WaitGroup
	for k, x := range []*comm.Comm{dup, rev} {
		wg.Go(func() {
			for i := range 200 {
				v := []int64{int64(x.Rank() + i + k)}
				check(comm.Allreduce(x, v, v, comm.Sum), "concurrent allreduce")
				want := int64(n*(n-1)/2 + n*(i+k))
				if v[0] != want {
					fail("concurrent allreduce %d on communicator %d: %d, want %d", i, k, v[0], want)
				}
				b := []int64{int64(i)}
				if x.Rank() != 0 {
					b[0] = -1
				}
				check(comm.Bcast(x, b, 0), "concurrent bcast")
				if b[0] != int64(i) {
					fail("concurrent bcast %d on communicator %d: %d", i, k, b[0])
				}
			}
		})
	}
	wg.Wait()

	// More live communicators than arenas, then all closed; then one more, which gets an
	// arena again.
	var many []*comm.Comm
	for i := range 12 {
		d, err := c.Dup()
		check(err, "dup %d", i)
		v := []int32{1}
		check(comm.Allreduce(d, v, v, comm.Sum), "allreduce on dup %d", i)
		if v[0] != int32(n) {
			fail("allreduce on dup %d: %d, want %d", i, v[0], n)
		}
		many = append(many, d)
	}
	for _, d := range append(many, rev, dup, half) {
		check(d.Close(), "close")
	}
	last, err := c.Dup()
	check(err, "dup after close")
	typed[float32](last, floatOps[:1])
	check(last.Close(), "close")
	check(c.Barrier(), "barrier")
	if me == 0 {
		fmt.Printf("coll derived ok on %d ranks\n", n)
	}
}
