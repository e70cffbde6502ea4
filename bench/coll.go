package bench

import (
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// Collective benchmarks, as OSU 7 measures them: each rank times every call alone, with a
// barrier between calls (untimed), and the table gives the mean over ranks of each rank's
// average, and the smallest and largest rank's average.

// timeCollective runs op iters+warmup times on every rank and returns, on rank 0, the
// average, minimum and maximum over ranks of the per-rank mean time (µs) and iters.
func timeCollective(c *comm.Comm, iters, warmup int, op func() error) ([]float64, error) {
	if err := c.Barrier(); err != nil {
		return nil, err
	}
	var total time.Duration
	for i := range iters + warmup {
		t0 := time.Now()
		if err := op(); err != nil {
			return nil, err
		}
		if d := time.Since(t0); i >= warmup {
			total += d
		}
		if err := c.Barrier(); err != nil {
			return nil, err
		}
	}
	mean := micros(total) / float64(iters)
	sum, lo, hi := []float64{mean}, []float64{mean}, []float64{mean}
	for _, r := range []struct {
		v  []float64
		op comm.Op
	}{{sum, comm.Sum}, {lo, comm.Min}, {hi, comm.Max}} {
		if err := comm.Allreduce(c, r.v, r.v, r.op); err != nil {
			return nil, err
		}
	}
	if c.Rank() != 0 {
		return nil, nil
	}
	return []float64{sum[0] / float64(c.Size()), lo[0], hi[0], float64(iters)}, nil
}

// floats returns size bytes' worth of float32 (OSU's default datatype for reductions).
func floats(size int) []float32 {
	f := make([]float32, size/4)
	for i := range f {
		f[i] = 1
	}
	return f
}

func measureBcast(e *env, size, iters, warmup int) ([]float64, error) {
	buf := payload(size, 'a')
	return timeCollective(e.c, iters, warmup, func() error { return comm.Bcast(e.c, buf, 0) })
}

func measureAllreduce(e *env, size, iters, warmup int) ([]float64, error) {
	send, recv := floats(size), floats(size)
	return timeCollective(e.c, iters, warmup, func() error { return comm.Allreduce(e.c, send, recv, comm.Sum) })
}

func measureBarrier(e *env, _, iters, warmup int) ([]float64, error) {
	return timeCollective(e.c, iters, warmup, e.c.Barrier)
}
