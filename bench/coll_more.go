package bench

import "github.com/gorun-hpc/gorun/comm"

// The collectives whose entry points came after Bcast and Allreduce (DESIGN.md's signatures).

func measureReduce(e *env, size, iters, warmup int) ([]float64, error) {
	send, recv := floats(size), floats(size)
	return timeCollective(e.c, iters, warmup, func() error { return comm.Reduce(e.c, send, recv, comm.Sum, 0) })
}

func measureAllgather(e *env, size, iters, warmup int) ([]float64, error) {
	send, recv := payload(size, 'a'), payload(size*e.c.Size(), 'b')
	return timeCollective(e.c, iters, warmup, func() error { return comm.Allgather(e.c, send, recv) })
}

func measureAlltoall(e *env, size, iters, warmup int) ([]float64, error) {
	send, recv := payload(size*e.c.Size(), 'a'), payload(size*e.c.Size(), 'b')
	return timeCollective(e.c, iters, warmup, func() error { return comm.Alltoall(e.c, send, recv) })
}
