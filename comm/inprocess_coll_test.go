package comm_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/collref"
	"github.com/gorun-hpc/gorun/internal/view"
)

// Every collective comm offers, in process, checked against a sequential reference computed
// from every rank's input: on the world (which runs them hierarchically when every rank is
// its own node, point to point otherwise), on a duplicate (point to point), and on the halves
// of a split (odd sizes, ranks in reverse order). Counts run from 0 up; the large test moves a
// few MiB per call.

// collNumber is the element types the matrix runs.
type collNumber interface {
	int32 | float64
}

var (
	intOps     = []comm.Op{comm.Sum, comm.Prod, comm.Min, comm.Max, comm.Band, comm.Bor, comm.Bxor, comm.Land, comm.Lor}
	floatOps   = []comm.Op{comm.Sum, comm.Prod, comm.Min, comm.Max}
	collCounts = []int{0, 1, 7, 1000}
)

// collInputs is every rank's input.
func collInputs[T collNumber](n, count, seed int) [][]T {
	in := make([][]T, n)
	for r := range in {
		in[r] = collref.Input[T](r, count, seed)
	}
	return in
}

func concatBlocks[T any](parts [][]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// sameElems reports the first element where got and want differ. The inputs make every result
// exact, so equal values have equal bits, and the bits are compared whole first (element by
// element, the race detector's bookkeeping would cost more than the collective).
func sameElems[T comparable](got, want []T, what string) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d elements, want %d", what, len(got), len(want))
	}
	if bytes.Equal(view.Bytes(got), view.Bytes(want)) {
		return nil
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("%s: element %d of %d is %v, want %v", what, i, len(got), got[i], want[i])
		}
	}
	return nil
}

// memo holds what every rank of a job would otherwise compute alike — every rank's inputs,
// the references — once per test. What it holds is read-only once made.
type memo struct {
	mu sync.Mutex
	m  map[memoKey]*memoEntry
}

type memoKey struct {
	what           string
	n, count, seed int
	op             comm.Op
}

type memoEntry struct {
	once sync.Once
	v    any
}

func newMemo() *memo { return &memo{m: map[memoKey]*memoEntry{}} }

// cached returns the value under key, making it with build the first time.
func cached[V any](m *memo, key memoKey, build func() V) V {
	m.mu.Lock()
	e := m.m[key]
	if e == nil {
		e = &memoEntry{}
		m.m[key] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.v = build() })
	return e.v.(V)
}

// sharedInputs is collInputs, made once per memo.
func sharedInputs[T collNumber](m *memo, n, count, seed int) [][]T {
	return cached(m, memoKey{what: fmt.Sprintf("inputs %T", *new(T)), n: n, count: count, seed: seed}, func() [][]T {
		return collInputs[T](n, count, seed)
	})
}

// prefixes returns, for every rank r, the reduction by op of the inputs of ranks 0…r (so
// prefixes[n-1] is the full reduction), made once per memo.
func prefixes[T collNumber](m *memo, op comm.Op, n, count, seed int) [][]T {
	return cached(m, memoKey{what: fmt.Sprintf("prefixes %T", *new(T)), n: n, count: count, seed: seed, op: op}, func() [][]T {
		ins := sharedInputs[T](m, n, count, seed)
		out := make([][]T, n)
		out[0] = ins[0]
		for r := 1; r < n; r++ {
			acc := append([]T(nil), out[r-1]...)
			for i := range acc {
				acc[i] = collref.Apply(op, acc[i], ins[r][i])
			}
			out[r] = acc
		}
		return out
	})
}

// collRoots are the roots a rooted collective is tried at: the first, the last and a middle rank.
func collRoots(n int) []int {
	rs := []int{0}
	if n > 1 {
		rs = append(rs, n-1)
	}
	if n > 2 {
		rs = append(rs, n/2)
	}
	return rs
}

// collMatrix runs every collective on c for every count: every op on each type, each root of
// collRoots(c.Size()) in turn. seed makes the inputs of each call differ.
func collMatrix(c *comm.Comm, m *memo, counts []int) error {
	if err := c.Barrier(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	for ci, count := range counts {
		if err := errors.Join(
			reductions[int32](c, m, count, ci, intOps),
			reductions[float64](c, m, count, ci, floatOps),
			movement[int32](c, m, count, ci),
			movement[float64](c, m, count, ci),
			allreduceFunc(c, count, ci),
		); err != nil {
			return fmt.Errorf("count %d: %w", count, err)
		}
	}
	return c.Barrier()
}

// reductions: Reduce, Allreduce (also in place), Scan and ReduceScatterBlock with every op.
func reductions[T collNumber](c *comm.Comm, m *memo, count, seed int, ops []comm.Op) error {
	me, n := c.Rank(), c.Size()
	rs := collRoots(n)
	for oi, op := range ops {
		s := seed*100 + oi
		ins := sharedInputs[T](m, n, count, s)
		pre := prefixes[T](m, op, n, count, s)
		all := pre[n-1]
		what := fmt.Sprintf("%T %v", all, op)

		recv := make([]T, count)
		if err := comm.Allreduce(c, ins[me], recv, op); err != nil {
			return fmt.Errorf("allreduce %s: %w", what, err)
		}
		if err := sameElems(recv, all, "allreduce "+what); err != nil {
			return err
		}
		inPlace := append([]T(nil), ins[me]...)
		if err := comm.Allreduce(c, inPlace, inPlace, op); err != nil {
			return fmt.Errorf("in-place allreduce %s: %w", what, err)
		}
		if err := sameElems(inPlace, all, "in-place allreduce "+what); err != nil {
			return err
		}

		root := rs[(oi+seed)%len(rs)]
		var rrecv []T
		if me == root {
			rrecv = make([]T, count)
		}
		if err := comm.Reduce(c, ins[me], rrecv, op, root); err != nil {
			return fmt.Errorf("reduce %s to %d: %w", what, root, err)
		}
		if me == root {
			if err := sameElems(rrecv, all, fmt.Sprintf("reduce %s to %d", what, root)); err != nil {
				return err
			}
		}

		scan := make([]T, count)
		if err := comm.Scan(c, ins[me], scan, op); err != nil {
			return fmt.Errorf("scan %s: %w", what, err)
		}
		if err := sameElems(scan, pre[me], "scan "+what); err != nil {
			return err
		}

		// ReduceScatterBlock: count elements per rank, of n·count contributed.
		blocks := sharedInputs[T](m, n, n*count, s+1)
		sum := prefixes[T](m, op, n, n*count, s+1)[n-1]
		block := make([]T, count)
		if err := comm.ReduceScatterBlock(c, blocks[me], block, op); err != nil {
			return fmt.Errorf("reduce-scatter %s: %w", what, err)
		}
		if err := sameElems(block, sum[me*count:(me+1)*count], "reduce-scatter "+what); err != nil {
			return err
		}
	}
	return nil
}

// movement: Bcast, Gather and Scatter from every root, Allgather, Alltoall.
func movement[T collNumber](c *comm.Comm, m *memo, count, seed int) error {
	me, n := c.Rank(), c.Size()
	for ri, root := range collRoots(n) {
		s := seed*100 + 50 + ri*5
		ins := sharedInputs[T](m, n, count, s)
		what := fmt.Sprintf("%T from %d", ins[0], root)

		buf := make([]T, count)
		if me == root {
			copy(buf, ins[root])
		}
		if err := comm.Bcast(c, buf, root); err != nil {
			return fmt.Errorf("bcast %s: %w", what, err)
		}
		if err := sameElems(buf, ins[root], "bcast "+what); err != nil {
			return err
		}

		var gathered []T
		if me == root {
			gathered = make([]T, n*count)
		}
		if err := comm.Gather(c, ins[me], gathered, root); err != nil {
			return fmt.Errorf("gather %s: %w", what, err)
		}
		if me == root {
			if err := sameElems(gathered, concatBlocks(ins), "gather "+what); err != nil {
				return err
			}
		}

		whole := sharedInputs[T](m, n, n*count, s+1)[root]
		var send []T
		if me == root {
			send = whole
		}
		part := make([]T, count)
		if err := comm.Scatter(c, send, part, root); err != nil {
			return fmt.Errorf("scatter %s: %w", what, err)
		}
		if err := sameElems(part, whole[me*count:(me+1)*count], "scatter "+what); err != nil {
			return err
		}
	}

	s := seed*100 + 90
	ins := sharedInputs[T](m, n, count, s)
	all := make([]T, n*count)
	if err := comm.Allgather(c, ins[me], all); err != nil {
		return fmt.Errorf("allgather: %w", err)
	}
	if err := sameElems(all, concatBlocks(ins), fmt.Sprintf("allgather %T", all)); err != nil {
		return err
	}

	// Alltoall: block j of rank i's send goes to rank j's block i.
	sends := sharedInputs[T](m, n, n*count, s+1)
	recv := make([]T, n*count)
	if err := comm.Alltoall(c, sends[me], recv); err != nil {
		return fmt.Errorf("alltoall: %w", err)
	}
	want := make([]T, 0, n*count)
	for i := range n {
		want = append(want, sends[i][me*count:(me+1)*count]...)
	}
	return sameElems(recv, want, fmt.Sprintf("alltoall %T", recv))
}

// allreduceFunc: a user operation that is associative but not commutative — composing affine
// maps x → m·x + c, held as complex numbers m + c·i — must be applied in rank order, lower
// ranks' contribution first (in in, as MPI's invec), on every rank alike.
func allreduceFunc(c *comm.Comm, count, seed int) error {
	me, n := c.Rank(), c.Size()
	affine := func(r int) []complex128 {
		out := make([]complex128, count)
		for i := range out {
			out[i] = complex(float64((r+i+seed)%3-1|1), float64((r*7+i+seed)%5)) // m = ±1
		}
		return out
	}
	compose := func(inout, in []complex128) { // first in, then inout
		for i := range inout {
			m1, c1, m2, c2 := real(in[i]), imag(in[i]), real(inout[i]), imag(inout[i])
			inout[i] = complex(m1*m2, m2*c1+c2)
		}
	}
	want := affine(0)
	for r := 1; r < n; r++ {
		next := affine(r)
		compose(next, want)
		want = next
	}
	got := make([]complex128, count)
	if err := comm.AllreduceFunc(c, affine(me), got, compose); err != nil {
		return fmt.Errorf("allreduce func: %w", err)
	}
	return sameElems(got, want, "allreduce func (affine composition in rank order)")
}

// onCommunicators runs f on c, on a duplicate of c, and on its halves after a split by parity
// that reverses the order.
func onCommunicators(c *comm.Comm, f func(c *comm.Comm) error) error {
	if err := f(c); err != nil {
		return fmt.Errorf("world: %w", err)
	}
	d, err := c.Dup()
	if err != nil {
		return err
	}
	defer d.Close()
	if err := f(d); err != nil {
		return fmt.Errorf("dup: %w", err)
	}
	half, err := c.Split(c.Rank()%2, -c.Rank())
	if err != nil {
		return err
	}
	defer half.Close()
	if err := f(half); err != nil {
		return fmt.Errorf("half %d (rank %d of %d): %w", c.Rank()%2, half.Rank(), half.Size(), err)
	}
	return nil
}

func TestInProcessCollectives(t *testing.T) {
	m := newMemo()
	// Pushed delivery with the world hierarchical, polled with it point to point, and every
	// message by rendezvous (the large test adds polled delivery with the world hierarchical).
	shapes := []jobShape{jobShapes[0], jobShapes[2], jobShapes[3]}
	forJobs(t, shapes, inProcRanks, func(c *comm.Comm) error {
		return onCommunicators(c, func(c *comm.Comm) error { return collMatrix(c, m, collCounts) })
	})
}

// TestInProcessCollectivesLarge: every collective moves a few MiB per call (2 MiB of float64
// per rank, blocks split among the ranks where the call gathers or scatters), on the world
// run hierarchically over polled delivery, and run point to point over pushed delivery.
func TestInProcessCollectivesLarge(t *testing.T) {
	const total = 2 << 20 / 8
	m := newMemo()
	large := func(c *comm.Comm) error { return largeCollectives(c, m, total) }
	forJobs(t, jobShapes[1:2], []int{2, 3, 8}, large)
	forJobs(t, jobShapes[3:4], []int{3}, large)
}

func largeCollectives(c *comm.Comm, m *memo, total int) error {
	me, n := c.Rank(), c.Size()
	ins := sharedInputs[float64](m, n, total, 1)
	pre := prefixes[float64](m, comm.Sum, n, total, 1)
	all := pre[n-1]
	recv := make([]float64, total)
	if err := comm.Allreduce(c, ins[me], recv, comm.Sum); err != nil {
		return err
	}
	if err := sameElems(recv, all, "allreduce"); err != nil {
		return err
	}
	root := n - 1
	clear(recv)
	if err := comm.Reduce(c, ins[me], recv, comm.Sum, root); err != nil {
		return err
	}
	if me == root {
		if err := sameElems(recv, all, "reduce"); err != nil {
			return err
		}
	}
	if err := comm.Scan(c, ins[me], recv, comm.Sum); err != nil {
		return err
	}
	if err := sameElems(recv, pre[me], "scan"); err != nil {
		return err
	}
	copy(recv, ins[me])
	if err := comm.Bcast(c, recv, 1); err != nil {
		return err
	}
	if err := sameElems(recv, ins[1], "bcast"); err != nil {
		return err
	}
	block := total / n
	blocks := make([][]float64, n)
	for r := range blocks {
		blocks[r] = ins[r][:block]
	}
	want := concatBlocks(blocks)
	got := recv[:n*block]
	if err := comm.Allgather(c, blocks[me], got); err != nil {
		return err
	}
	if err := sameElems(got, want, "allgather"); err != nil {
		return err
	}
	clear(got)
	if err := comm.Gather(c, blocks[me], got, 0); err != nil {
		return err
	}
	if me == 0 {
		if err := sameElems(got, want, "gather"); err != nil {
			return err
		}
	}
	part := make([]float64, block)
	if err := comm.Scatter(c, ins[0][:n*block], part, 0); err != nil {
		return err
	}
	if err := sameElems(part, ins[0][me*block:(me+1)*block], "scatter"); err != nil {
		return err
	}
	if err := comm.Alltoall(c, ins[me][:n*block], got); err != nil {
		return err
	}
	for i := range n {
		if err := sameElems(got[i*block:(i+1)*block], ins[i][me*block:(me+1)*block], fmt.Sprintf("alltoall block %d", i)); err != nil {
			return err
		}
	}
	if err := comm.ReduceScatterBlock(c, ins[me][:n*block], part, comm.Sum); err != nil {
		return err
	}
	return sameElems(part, all[me*block:(me+1)*block], "reduce-scatter")
}

// TestInProcessCollectiveErrors: arguments every rank gets wrong are an error on every rank,
// before anything is sent (so no rank waits for another), and the communicator stays usable.
func TestInProcessCollectiveErrors(t *testing.T) {
	forJobs(t, jobShapes[:2], inProcRanks, func(c *comm.Comm) error {
		n := c.Size()
		for _, tc := range []struct {
			what string
			err  error
			want error
		}{
			{"a bitwise op on floats", comm.Allreduce(c, []float64{1}, []float64{0}, comm.Band), comm.ErrOp},
			{"allreduce into a shorter buffer", comm.Allreduce(c, []int32{1, 2}, []int32{0}, comm.Sum), comm.ErrBuffer},
			{"reduce to root n", comm.Reduce(c, []int32{1}, []int32{0}, comm.Sum, n), comm.ErrRank},
			{"bcast from root -1", comm.Bcast(c, []int32{1}, -1), comm.ErrRank},
			{"gather into a short buffer", comm.Gather(c, []int32{1, 2}, make([]int32, 2*n-1), c.Rank()), comm.ErrBuffer},
			{"allgather into a short buffer", comm.Allgather(c, []int32{1}, make([]int32, n+1)), comm.ErrBuffer},
			{"alltoall into a longer buffer", comm.Alltoall(c, make([]int32, n), make([]int32, 2*n)), comm.ErrBuffer},
			{"scan with a bitwise op on floats", comm.Scan(c, []float64{1}, []float64{0}, comm.Bxor), comm.ErrOp},
			{"reduce-scatter of a short send", comm.ReduceScatterBlock(c, make([]int32, n-1), make([]int32, 1), comm.Sum), comm.ErrBuffer},
			{"allreduce func without a function", comm.AllreduceFunc[int32](c, []int32{1}, []int32{0}, nil), comm.ErrOp},
		} {
			if !errors.Is(tc.err, tc.want) {
				return fmt.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
			}
		}
		if n > 1 {
			if err := comm.Alltoall(c, make([]int32, n+1), make([]int32, n+1)); !errors.Is(err, comm.ErrBuffer) {
				return fmt.Errorf("alltoall of a count not a multiple of the size: %v", err)
			}
		}
		return collMatrix(c, newMemo(), []int{3})
	})
}
