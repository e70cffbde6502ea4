package bench

import "github.com/gorun-hpc/gorun/comm"

// Gather, scatter and reduce-scatter, laid out as OSU 7's osu_gather, osu_scatter and
// osu_reduce_scatter lay them out (root 0, OSU's default; timing as in coll.go):
//
//	gather          every rank sends size bytes; the root receives Size()·size
//	scatter         the root sends size bytes to each rank (Size()·size in all)
//	reduce_scatter  size is the whole vector, size/4 float32 summed elementwise; rank i keeps
//	                OSU's block i: size/4/N elements, the first (size/4)%N ranks one more
//	                (one each while size/4 < N, the rest none)

func measureGather(e *env, size, iters, warmup int) ([]float64, error) {
	send := payload(size, 'a')
	var recv []byte // not used off the root
	if e.c.Rank() == 0 {
		recv = payload(size*e.c.Size(), 'b')
	}
	return timeCollective(e.c, iters, warmup, func() error { return comm.Gather(e.c, send, recv, 0) })
}

func measureScatter(e *env, size, iters, warmup int) ([]float64, error) {
	var send []byte // not used off the root
	if e.c.Rank() == 0 {
		send = payload(size*e.c.Size(), 'a')
	}
	recv := payload(size, 'b')
	return timeCollective(e.c, iters, warmup, func() error { return comm.Scatter(e.c, send, recv, 0) })
}

// reduceScatterCounts are osu_reduce_scatter's receive counts for n elements over ranks
// ranks, and whether they are all equal: then the call is comm.ReduceScatterBlock, else
// comm.ReduceScatter.
func reduceScatterCounts(n, ranks int) (counts []int, equal bool) {
	counts = make([]int, ranks)
	for i := range counts {
		switch {
		case n < ranks && i < n:
			counts[i] = 1
		case n >= ranks:
			counts[i] = n / ranks
			if i < n%ranks {
				counts[i]++
			}
		}
	}
	return counts, n%ranks == 0
}

func measureReduceScatter(e *env, size, iters, warmup int) ([]float64, error) {
	counts, equal := reduceScatterCounts(size/4, e.c.Size())
	send, recv := floats(size), floats(4*counts[e.c.Rank()])
	op := func() error { return comm.ReduceScatterBlock(e.c, send, recv, comm.Sum) }
	if !equal {
		op = func() error { return comm.ReduceScatter(e.c, send, recv, counts, comm.Sum) }
	}
	return timeCollective(e.c, iters, warmup, op)
}
