package bench

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gorun-hpc/gorun/comm"
)

// benchmark is one rank benchmark: OSU's title and columns, its defaults, and the measurement
// of one message size.
type benchmark struct {
	name    string
	title   string
	summary string
	columns []string
	counts  counts
	minSize int // default smallest size
	maxSize int // default largest size
	sized   bool
	// ranks checks the communicator size; nil: any.
	ranks func(n int) error
	// measure runs one size on every rank and returns rank 0's row values (nil elsewhere).
	measure func(e *env, size, iters, warmup int) ([]float64, error)
}

// env is what a measurement works with: the communicator and the options.
type env struct {
	c   *comm.Comm
	opt *Options
}

const (
	maxPt2pt = 4 << 20 // OSU's MAX_MESSAGE_SIZE
	maxColl  = 1 << 20 // OSU's MAX_MSG_SIZE_COLL, MAX_MSG_SIZE_PT2PT
)

// collColumns are OSU's columns with -f (full): every collective reports them.
var collColumns = []string{"Avg Latency(us)", "Min Latency(us)", "Max Latency(us)", iterationsColumn}

// benchmarks is the suite, in the order the usage lists it: the v-collectives (collv.go), the
// neighbourhood (neighbor.go) and communicator (comms.go) benchmarks last.
var benchmarks = slices.Concat(baseBenchmarks, collvBenchmarks, neighborBenchmarks, commsBenchmarks)

var baseBenchmarks = []benchmark{
	{name: "latency", title: "OSU MPI Latency Test", summary: "ping-pong one-way latency, 2 ranks",
		columns: []string{"Latency (us)"}, counts: latCounts, maxSize: maxPt2pt, sized: true,
		ranks: exactly(2), measure: measureLatency},
	{name: "bw", title: "OSU MPI Bandwidth Test", summary: "unidirectional bandwidth, window of 64, 2 ranks",
		columns: []string{"Bandwidth (MB/s)"}, counts: bwCounts, minSize: 1, maxSize: maxPt2pt, sized: true,
		ranks: exactly(2), measure: measureBW},
	{name: "bibw", title: "OSU MPI Bi-Directional Bandwidth Test", summary: "bidirectional bandwidth, 2 ranks",
		columns: []string{"Bandwidth (MB/s)"}, counts: bwCounts, minSize: 1, maxSize: maxPt2pt, sized: true,
		ranks: exactly(2), measure: measureBIBW},
	{name: "mbw_mr", title: "OSU MPI Multiple Bandwidth / Message Rate Test", summary: "bandwidth and message rate of N/2 pairs",
		columns: []string{"MB/s", "Messages/s"}, counts: bwCounts, minSize: 1, maxSize: maxPt2pt, sized: true,
		ranks: pairs, measure: measureMBWMR},
	{name: "multi_lat", title: "OSU MPI Multi Latency Test", summary: "ping-pong latency of N/2 pairs at once",
		columns: []string{"Latency (us)"}, counts: latCounts, maxSize: maxColl, sized: true,
		ranks: pairs, measure: measureMultiLat},
	{name: "stream_lat", title: "gorun Stream Latency Test", summary: "one-way delay of a paced stream (batching's added latency)",
		columns: []string{"Latency (us)"}, counts: latCounts, minSize: 8, maxSize: 8, sized: true,
		ranks: exactly(2), measure: measureStream},
	{name: "bcast", title: "OSU MPI Broadcast Latency Test", summary: "broadcast from rank 0",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureBcast},
	{name: "allreduce", title: "OSU MPI Allreduce Latency Test", summary: "allreduce, float32 sum",
		columns: collColumns, counts: collCounts, minSize: 4, maxSize: maxColl, sized: true, measure: measureAllreduce},
	{name: "reduce", title: "OSU MPI Reduce Latency Test", summary: "reduce to rank 0, float32 sum",
		columns: collColumns, counts: collCounts, minSize: 4, maxSize: maxColl, sized: true, measure: measureReduce},
	{name: "barrier", title: "OSU MPI Barrier Latency Test", summary: "barrier",
		columns: collColumns, counts: collCounts, measure: measureBarrier},
	{name: "allgather", title: "OSU MPI Allgather Latency Test", summary: "allgather, size bytes from each rank",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureAllgather},
	{name: "alltoall", title: "OSU MPI All-to-All Personalized Exchange Latency Test", summary: "alltoall, size bytes per pair",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureAlltoall},
	{name: "gather", title: "OSU MPI Gather Latency Test", summary: "gather to rank 0, size bytes from each rank",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureGather},
	{name: "scatter", title: "OSU MPI Scatter Latency Test", summary: "scatter from rank 0, size bytes to each rank",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureScatter},
	{name: "reduce_scatter", title: "OSU MPI Reduce_scatter Latency Test", summary: "reduce-scatter of size bytes in all, float32 sum",
		columns: collColumns, counts: collCounts, minSize: 4, maxSize: maxColl, sized: true,
		measure: measureReduceScatter},
}

// benchmarkInfo describes one rank benchmark for usage texts.
type benchmarkInfo struct{ Name, Summary string }

// Benchmarks lists the rank benchmarks.
func Benchmarks() []benchmarkInfo {
	out := make([]benchmarkInfo, len(benchmarks))
	for i, b := range benchmarks {
		out[i] = benchmarkInfo{b.name, b.summary}
	}
	return out
}

// IsBenchmark reports whether name is a rank benchmark.
func IsBenchmark(name string) bool { return lookup(name) != nil }

func lookup(name string) *benchmark {
	i := slices.IndexFunc(benchmarks, func(b benchmark) bool { return b.name == name })
	if i < 0 {
		return nil
	}
	return &benchmarks[i]
}

// errUnknown is returned for a benchmark name that is not in the suite.
var errUnknown = errors.New("unknown benchmark")

// Run runs the named benchmark on every rank of c (all ranks call it with the same options)
// and returns the result on rank 0 (nil on the others). Rank 0 also prints OSU's table to
// opt.Text as it goes.
func Run(c *comm.Comm, name string, opt Options) (*Result, error) {
	b := lookup(name)
	if b == nil {
		return nil, fmt.Errorf("%w %q", errUnknown, name)
	}
	if b.ranks != nil {
		if err := b.ranks(c.Size()); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if opt.Window <= 0 {
		opt.Window = defaultWindow
	}
	list, err := b.sizeList(&opt)
	if err != nil {
		return nil, err
	}
	e := &env{c: c, opt: &opt}
	if opt.WarmPass {
		// Largest first: a few large messages cycle through every page of a ring, which
		// thousands of small ones would not.
		for _, size := range slices.Backward(list) {
			_, warmup := opt.iterations(b.counts, size)
			if _, err := b.measure(e, size, max(warmup, 1), 0); err != nil {
				return nil, fmt.Errorf("%s, warm pass at %d bytes: %w", name, size, err)
			}
		}
	}
	var res *Result
	if c.Rank() == 0 {
		res = b.newResult(c, &opt)
	}
	if err := b.sweep(e, list, res); err != nil {
		return nil, err
	}
	return res, nil
}

// sizeList is the sizes to measure: the benchmark's range narrowed by -m.
func (b *benchmark) sizeList(opt *Options) ([]int, error) {
	if !b.sized {
		return []int{0}, nil
	}
	lo, hi := max(opt.MinSize, b.minSize), b.maxSize
	if opt.MaxSize > 0 {
		hi = opt.MaxSize
	}
	list := sizes(lo, hi)
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: no message sizes from %d to %d", b.name, lo, hi)
	}
	return list, nil
}

// sweep measures every size. On rank 0 (res not nil) it fills res, prints the table to
// opt.Text and shows progress.
func (b *benchmark) sweep(e *env, list []int, res *Result) error {
	opt := e.opt
	if res != nil {
		if opt.Text != nil {
			if err := res.writeHeader(opt.Text); err != nil {
				return err
			}
		}
		total := 0.0
		for _, size := range list {
			total += b.cost(opt, size)
		}
		opt.Progress.begin(total)
		defer opt.Progress.end()
	}
	for i, size := range list {
		iters, warmup := opt.iterations(b.counts, size)
		if i == 0 {
			// The first size warms up as long as it measures: for about ten milliseconds
			// after start-up a job runs slow (first touches of memory are part of it; the
			// rest we have not pinned down), and OSU's 100 warm-up iterations left gorun's
			// 8-byte latency at 0.65-0.9 µs where 10000 gave 0.44 in the same placement.
			warmup = max(warmup, iters)
		}
		if res != nil {
			opt.Progress.step(fmt.Sprintf("%s %s", b.name, sizeText(float64(size))), b.cost(opt, size))
		}
		vals, err := b.measure(e, size, iters, warmup)
		if err != nil {
			return fmt.Errorf("%s, %d bytes: %w", b.name, size, err)
		}
		if res == nil {
			continue
		}
		row := Row{Size: size, Values: vals}
		res.Rows = append(res.Rows, row)
		if opt.Text != nil {
			if err := res.writeRow(opt.Text, row); err != nil {
				return err
			}
		}
	}
	return nil
}

// cost guesses the time of one size for the progress estimate: iterations of a fixed
// overhead plus a copy (about 4 KiB's worth of overhead per message).
func (b *benchmark) cost(opt *Options, size int) float64 {
	iters, warmup := opt.iterations(b.counts, size)
	msgs := float64(iters + warmup)
	if b.counts == bwCounts {
		msgs *= float64(opt.Window)
	}
	return msgs * float64(4096+size)
}

func (b *benchmark) newResult(c *comm.Comm, opt *Options) *Result {
	tr := opt.Transport
	if tr == "" {
		tr = "auto"
	}
	res := &Result{Benchmark: b.name, Title: b.title, Transport: tr, Ranks: c.Size(),
		Sized: b.sized, Columns: b.columns, Notes: opt.Notes}
	if c.Size() > 1 {
		res.Path, _ = c.Path(1)
	} else {
		res.Path = "self"
	}
	switch b.name {
	case "bw", "bibw":
		res.Notes = append(slices.Clone(res.Notes), fmt.Sprintf("Window size: %d", opt.Window))
	case "mbw_mr":
		res.Notes = append(slices.Clone(res.Notes), fmt.Sprintf("[ pairs: %d ] [ window size: %d ]", c.Size()/2, opt.Window))
	case "stream_lat":
		res.Notes = append(slices.Clone(res.Notes), fmt.Sprintf("one message every %v; latency = arrival - send time (one host, one clock)", opt.interval()))
	}
	return res
}

func exactly(n int) func(int) error {
	return func(size int) error {
		if size != n {
			return fmt.Errorf("needs exactly %d ranks, have %d (run it with gorun -n %d)", n, size, n)
		}
		return nil
	}
}

func pairs(n int) error {
	if n < 2 || n%2 != 0 {
		return fmt.Errorf("needs an even number of ranks, have %d (run it with gorun -n 2, 4, ...)", n)
	}
	return nil
}
