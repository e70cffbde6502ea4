package comm_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gorun-hpc/gorun/comm"
)

// graphEdges is the test graph on n ranks as one list of edges (source, destination): a ring
// over the first m ranks (m = n-1 from 3 ranks on: the last rank has no edge at all), self
// edges at the even ranks, every other rank's repeated edge to rank 0, and one back from 0.
// Rank r's destinations are its edges' in this order, its sources those toward it, so the
// k-th repeat of an edge is the k-th at both ends.
func graphEdges(n int) [][2]int {
	m := n
	if n >= 3 {
		m = n - 1
	}
	var e [][2]int
	for r := range m {
		e = append(e, [2]int{r, (r + 1) % m})
	}
	for r := 0; r < m; r += 2 {
		e = append(e, [2]int{r, r})
	}
	for r := 1; r < m; r++ {
		e = append(e, [2]int{r, 0}, [2]int{r, 0})
	}
	if m > 2 {
		e = append(e, [2]int{0, m - 1})
	}
	return e
}

// graphOf returns rank me's sources and destinations in edges, and the edge index of each.
func graphOf(edges [][2]int, me int) (srcs, dsts, inEdge, outEdge []int) {
	for i, e := range edges {
		if e[0] == me {
			dsts, outEdge = append(dsts, e[1]), append(outEdge, i)
		}
		if e[1] == me {
			srcs, inEdge = append(srcs, e[0]), append(inEdge, i)
		}
	}
	return srcs, dsts, inEdge, outEdge
}

func TestInProcessDistGraph(t *testing.T) {
	forEachJob(t, inSequence(
		namedStep{"uneven graph with self and repeated edges", graphExchange},
		namedStep{"star: sources only, destinations only", graphStar},
		namedStep{"bad graphs", graphErrors},
		namedStep{"on the world reversed", func(c *comm.Comm) error {
			rev, err := c.Split(0, -c.Rank())
			if err != nil {
				return err
			}
			defer rev.Close()
			return graphExchange(rev)
		}},
	))
}

func graphExchange(c *comm.Comm) error {
	me := c.Rank()
	edges := graphEdges(c.Size())
	srcs, dsts, inEdge, outEdge := graphOf(edges, me)
	s, d := slices.Clone(srcs), slices.Clone(dsts)
	g, err := c.DistGraph(s, d, true)
	if err != nil {
		return err
	}
	defer g.Close()
	if len(s) > 0 {
		s[0] = -5 // DistGraph must have kept its own copy
	}
	if g.Size() != c.Size() || g.Rank() != me {
		return rankErrorf("graph rank %d of %d", g.Rank(), g.Size())
	}
	gs, gd := g.Neighbors()
	if !slices.Equal(gs, srcs) || !slices.Equal(gd, dsts) {
		return rankErrorf("Neighbors %v, %v; want %v, %v", gs, gd, srcs, dsts)
	}
	// Irregular counts per edge: zeros, one element, and a rendezvous-sized block.
	count := func(e int) int { return []int{3, 0, 1, 7, 5000}[e%5] }
	for call := range 2 {
		block := func(e, k int) []int64 {
			b := make([]int64, k)
			for i := range b {
				b[i] = vElem(edges[e][0], e, i, call)
			}
			return b
		}
		sc, rc := make([]int, len(dsts)), make([]int, len(srcs))
		var send []int64
		for j, e := range outEdge {
			sc[j] = count(e)
			send = append(send, block(e, sc[j])...)
		}
		for i, e := range inEdge {
			rc[i] = count(e)
		}
		var sd []int // call 1: the send blocks gapped too
		if call == 1 {
			var size int
			sd, size = gapped(sc)
			gapped := slices.Repeat([]int64{vGap}, size)
			at := 0
			for j := range sc {
				copy(gapped[sd[j]:], send[at:at+sc[j]])
				at += sc[j]
			}
			send = gapped
		}
		rd, size := gapped(rc)
		recv := slices.Repeat([]int64{vGap}, size)
		if err := comm.NeighborAlltoallv(g, send, sc, sd, recv, rc, rd); err != nil {
			return fmt.Errorf("neighbor alltoallv: %w", err)
		}
		if err := checkV(recv, rc, rd, func(i int) []int64 { return block(inEdge[i], rc[i]) }, "graph alltoallv"); err != nil {
			return err
		}
	}
	// Uniform blocks: block j goes along edge outEdge[j].
	const k = 3
	send := make([]int64, 0, k*len(dsts))
	for _, e := range outEdge {
		for i := range k {
			send = append(send, vElem(me, e, i, 9))
		}
	}
	recv := make([]int64, k*len(srcs))
	if err := comm.NeighborAlltoall(g, send, recv); err != nil {
		return fmt.Errorf("neighbor alltoall: %w", err)
	}
	for i, e := range inEdge {
		for j := range k {
			if want := vElem(edges[e][0], e, j, 9); recv[i*k+j] != want {
				return rankErrorf("graph alltoall block %d (edge %d) element %d: %#x, want %#x", i, e, j, recv[i*k+j], want)
			}
		}
	}
	got := make([]int64, 2*len(srcs))
	if err := comm.NeighborAllgather(g, []int64{int64(me), int64(-me)}, got); err != nil {
		return fmt.Errorf("neighbor allgather: %w", err)
	}
	for i, s := range srcs {
		if got[2*i] != int64(s) || got[2*i+1] != int64(-s) {
			return rankErrorf("graph allgather block %d from %d: %v", i, s, got[2*i:2*i+2])
		}
	}
	sum := []int64{1}
	if err := comm.Allreduce(g.Comm, sum, sum, comm.Sum); err != nil {
		return err
	}
	if sum[0] != int64(c.Size()) {
		return rankErrorf("allreduce on the graph: %d", sum[0])
	}
	return nil
}

// graphStar: rank 0 sends to every other rank and receives from none; the others only
// receive. NeighborAlltoall takes its block length from whichever side has neighbours.
func graphStar(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	var srcs, dsts []int
	if me == 0 {
		for r := 1; r < n; r++ {
			dsts = append(dsts, r)
		}
	} else {
		srcs = []int{0}
	}
	g, err := c.DistGraph(srcs, dsts, false)
	if err != nil {
		return err
	}
	defer g.Close()
	const k = 2
	var send, recv []int64
	if me == 0 {
		for _, r := range dsts {
			send = append(send, int64(r), int64(100+r))
		}
	} else {
		recv = []int64{-1, -1}
	}
	if err := comm.NeighborAlltoall(g, send, recv); err != nil {
		return fmt.Errorf("neighbor alltoall: %w", err)
	}
	if me > 0 && (recv[0] != int64(me) || recv[1] != int64(100+me)) {
		return rankErrorf("star alltoall: %v", recv)
	}
	mine := []int64{int64(me), 42}
	got := make([]int64, k*len(srcs))
	if err := comm.NeighborAllgather(g, mine, got); err != nil {
		return fmt.Errorf("neighbor allgather: %w", err)
	}
	if me > 0 && (got[0] != 0 || got[1] != 42) {
		return rankErrorf("star allgather: %v", got)
	}
	// Buffers on the side without neighbours are an error, not a hang, on every rank.
	send, recv = make([]int64, k*len(dsts)), make([]int64, 1)
	if me > 0 {
		send, recv = make([]int64, 1), make([]int64, k)
	}
	if err := comm.NeighborAlltoall(g, send, recv); !errors.Is(err, comm.ErrBuffer) {
		return rankErrorf("star alltoall with %d and %d elements: %v, want ErrBuffer", len(send), len(recv), err)
	}
	return c.Barrier()
}

func graphErrors(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	edges := graphEdges(n)
	srcs, dsts, _, _ := graphOf(edges, me)
	// An edge one end does not declare: ErrTopology on every rank.
	extra := dsts
	if me == 0 {
		extra = append(slices.Clone(dsts), n-1)
	}
	if g, err := c.DistGraph(srcs, extra, false); !errors.Is(err, comm.ErrTopology) || g != nil {
		return rankErrorf("graph with an extra destination at rank 0 = %v, %v; want ErrTopology", g, err)
	}
	missing := srcs
	if me == n-1 && len(srcs) > 0 {
		missing = srcs[1:]
	} else if me == n-1 {
		missing = []int{0}
	}
	if g, err := c.DistGraph(missing, dsts, false); !errors.Is(err, comm.ErrTopology) || g != nil {
		return rankErrorf("graph with the last rank's sources changed = %v, %v; want ErrTopology", g, err)
	}
	// A repeat declared at one end only.
	if len(dsts) > 0 && me == 0 {
		extra = append(slices.Clone(dsts), dsts[0])
	} else {
		extra = dsts
	}
	if g, err := c.DistGraph(srcs, extra, false); !errors.Is(err, comm.ErrTopology) || g != nil {
		return rankErrorf("graph with a repeat at one end = %v, %v; want ErrTopology", g, err)
	}
	// A neighbour outside the communicator: ErrRank where it is, an error everywhere.
	out := dsts
	if me == 0 {
		out = append(slices.Clone(dsts), n)
	}
	g, err := c.DistGraph(srcs, out, false)
	if me == 0 && !errors.Is(err, comm.ErrRank) || err == nil || g != nil {
		return rankErrorf("graph with rank %d as rank 0's destination = %v, %v; want an error (ErrRank at rank 0)", n, g, err)
	}
	for _, bad := range []int{-1, comm.ProcNull, n + 5} {
		if g, err := c.DistGraph(append(slices.Clone(srcs), bad), dsts, false); !errors.Is(err, comm.ErrRank) || g != nil {
			return rankErrorf("graph with source %d everywhere = %v, %v; want ErrRank", bad, g, err)
		}
	}
	// And a good one works afterwards.
	g, err = c.DistGraph(srcs, dsts, false)
	if err != nil {
		return err
	}
	defer g.Close()
	got := make([]int64, len(srcs))
	if err := comm.NeighborAllgather(g, []int64{int64(me)}, got); err != nil {
		return err
	}
	for i, s := range srcs {
		if got[i] != int64(s) {
			return rankErrorf("allgather after bad graphs: %v from %v", got, srcs)
		}
	}
	return c.Barrier()
}
