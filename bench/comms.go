package bench

import (
	"fmt"

	"github.com/gorun-hpc/gorun/comm"
)

// allreduce_comms and bcast_comms time one collective on the world, on a Dup of it and on
// SplitNode's communicator in one job, interleaved: the iterations of a size are cut into
// commBlocks blocks, each communicator runs one block in turn (the order rotating from block
// to block), and each column is the median over the blocks of the block's mean (OSU's
// timing within a block: a barrier between calls, the mean over ranks). Run separately, as
// jobs of their own, the three differ by more from one job to the next (where the host has
// placed the vCPUs) than they could by their communicators; interleaved, they share that
// placement. The job must be on one node (SplitNode's communicator must be the world's ranks).

// commBlocks is the number of blocks a size's iterations are cut into.
const commBlocks = 20

var commsColumns = []string{"World(us)", "Dup(us)", "SplitNode(us)", "Dup/World", "SplitNode/World", iterationsColumn}

var commsBenchmarks = []benchmark{
	{name: "allreduce_comms", title: "gorun Allreduce on the world, a Dup and SplitNode's communicator",
		summary: "Allreduce (Sum, float32) on three communicators, interleaved; one node",
		columns: commsColumns, counts: collCounts, minSize: 4, maxSize: maxColl, sized: true, measure: measureAllreduceComms},
	{name: "bcast_comms", title: "gorun Bcast on the world, a Dup and SplitNode's communicator",
		summary: "Bcast on three communicators, interleaved; one node",
		columns: commsColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureBcastComms},
}

func measureAllreduceComms(e *env, size, iters, warmup int) ([]float64, error) {
	send, recv := floats(size), floats(size)
	return timeComms(e.c, iters, warmup, func(c *comm.Comm) error { return comm.Allreduce(c, send, recv, comm.Sum) })
}

func measureBcastComms(e *env, size, iters, warmup int) ([]float64, error) {
	buf := payload(size, 'a')
	return timeComms(e.c, iters, warmup, func(c *comm.Comm) error { return comm.Bcast(c, buf, 0) })
}

// timeComms times op on world, a Dup and SplitNode's communicator, interleaved by blocks,
// and returns rank 0's row.
func timeComms(world *comm.Comm, iters, warmup int, op func(c *comm.Comm) error) ([]float64, error) {
	dup, err := world.Dup()
	if err != nil {
		return nil, err
	}
	defer dup.Close()
	node, err := world.SplitNode()
	if err != nil {
		return nil, err
	}
	defer node.Close()
	if node.Size() != world.Size() {
		return nil, fmt.Errorf("the job spans several nodes (this one holds %d of %d ranks): SplitNode's communicator is not the world's ranks", node.Size(), world.Size())
	}
	cs := []*comm.Comm{world, dup, node}
	per := max(1, iters/commBlocks)
	means := make([][]float64, len(cs)) // per communicator, each block's mean (rank 0)
	for b := range commBlocks {
		for k := range cs {
			i := (b + k) % len(cs)
			w := 0
			if b == 0 {
				w = warmup
			}
			row, err := timeCollective(cs[i], per, w, func() error { return op(cs[i]) })
			if err != nil {
				return nil, err
			}
			if row != nil {
				means[i] = append(means[i], row[0])
			}
		}
	}
	if world.Rank() != 0 {
		return nil, nil
	}
	m := make([]float64, len(cs))
	for i, v := range means {
		m[i] = median(v)
	}
	return []float64{m[0], m[1], m[2], m[1] / m[0], m[2] / m[0], float64(per * commBlocks)}, nil
}
