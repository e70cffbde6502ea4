package main

import (
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/collref"
	"github.com/gorun-hpc/gorun/topology"
)

// topo checks process topologies between rank processes: the geometry of grids of 1 to 3
// dimensions (every rank's coordinates and shifts, and that neighbours agree on each other),
// a stencil's halo exchange by Sendrecv and by NeighborAlltoall against the field it must
// produce, neighbourhood collectives on a grid and a graph up to 1 MiB, CreateGroup while the
// other ranks talk, SplitType against the node, and how many grid neighbours sit on different
// nodes in row-major order and with reorder. Rank 0 prints one line per count:
//
//	topo cross [4 2] [false false] rowmajor 10 reorder 6
func topo(c *comm.Comm) {
	for nd := 1; nd <= 3; nd++ {
		dims, err := comm.DimsCreate(c.Size(), make([]int, nd))
		check(err, "dims create")
		periodic := make([]bool, nd)
		for d := range periodic {
			periodic[d] = d%2 == 0
		}
		for _, reorder := range []bool{false, true} {
			topoGeometry(c, dims, periodic, reorder)
		}
	}
	topoHalo(c)
	topoExchange(c)
	topoGraph(c)
	topoCreateGroup(c)
	topoSplitTypes(c)
	topoCross(c)
}

// topoGeometry: every rank's coordinates and RankOf, this rank's shifts, and, by a
// NeighborAllgather of the grid ranks, that each neighbour is who Neighbors says.
func topoGeometry(c *comm.Comm, dims []int, periodic []bool, reorder bool) {
	what := fmt.Sprintf("grid %v periodic %v reorder %v", dims, periodic, reorder)
	ct, err := c.Cart(dims, periodic, reorder)
	check(err, "%s", what)
	if ct.Size() != c.Size() || !reorder && ct.Rank() != c.Rank() {
		fail("%s: rank %d of %d in the grid", what, ct.Rank(), ct.Size())
	}
	for r := range ct.Size() {
		want := collref.GridCoords(dims, r)
		if got := ct.Coords(r); !slices.Equal(got, want) {
			fail("%s: Coords(%d) = %v, want %v", what, r, got, want)
		}
		if got, err := ct.RankOf(want); err != nil || got != r {
			fail("%s: RankOf(%v) = %d, %v", what, want, got, err)
		}
	}
	x := collref.GridCoords(dims, ct.Rank())
	for d := range dims {
		for disp := -2; disp <= 2; disp++ {
			src, dst := ct.Shift(d, disp)
			if ws, wd := collref.GridShift(dims, periodic, x, d, disp); src != ws || dst != wd {
				fail("%s: at %v Shift(%d, %d) = %d, %d; want %d, %d", what, x, d, disp, src, dst, ws, wd)
			}
		}
	}
	srcs, _ := ct.Neighbors()
	got := slices.Repeat([]int64{-1}, len(srcs))
	check(comm.NeighborAllgather(ct, []int64{int64(ct.Rank())}, got), "%s: neighbor allgather", what)
	for i, s := range srcs {
		if want := int64(s); s == comm.ProcNull && got[i] != -1 || s != comm.ProcNull && got[i] != want {
			fail("%s: block %d from neighbour %d holds %d", what, i, s, got[i])
		}
	}
	check(ct.Close(), "close grid")
}

// The stencil: a global field of (rows·L) × (cols·L) cells, periodic along the rows'
// dimension (0), not along the columns' (1), a block of L×L per rank with a halo of one.
const haloL = 6

func haloField(gi, gj int) float64 { return float64(gi*1000 + gj) }

// topoHalo: three Jacobi steps (each cell becomes the mean of its four neighbours; past the
// non-periodic edges a neighbour is 0), the halo exchanged by Sendrecv along Shift, checked
// against the field at the first step, then by NeighborAlltoall, which must agree; a
// weighted checksum of the result matches a serial computation of the whole field.
func topoHalo(c *comm.Comm) {
	dims, err := comm.DimsCreate(c.Size(), []int{0, 0})
	check(err, "dims create")
	periodic := []bool{true, false}
	ct, err := c.Cart(dims, periodic, true)
	check(err, "halo grid")
	x := ct.Coords(ct.Rank())
	rows, cols := dims[0]*haloL, dims[1]*haloL
	const w = haloL + 2
	at := func(i, j int) int { return (i+1)*w + j + 1 } // i, j in -1..L
	cur := make([]float64, w*w)
	for i := range haloL {
		for j := range haloL {
			cur[at(i, j)] = haloField(x[0]*haloL+i, x[1]*haloL+j)
		}
	}
	for step := range 3 {
		a := haloBySendrecv(ct, cur, at)
		b := haloByNeighbors(ct, cur, at)
		for k := range a {
			if a[k] != b[k] {
				fail("halo step %d: Sendrecv and NeighborAlltoall disagree at %d: %v and %v", step, k, a[k], b[k])
			}
		}
		if step == 0 {
			for i := -1; i <= haloL; i++ {
				for j := -1; j <= haloL; j++ {
					if (i == -1 || i == haloL) == (j == -1 || j == haloL) {
						continue // interior, or a corner (no diagonal exchange)
					}
					gi, gj := x[0]*haloL+i, x[1]*haloL+j
					want := 0.0
					if gj >= 0 && gj < cols {
						want = haloField((gi+rows)%rows, gj)
					}
					if a[at(i, j)] != want {
						fail("halo at %v cell (%d, %d): %v, want %v", x, i, j, a[at(i, j)], want)
					}
				}
			}
		}
		next := make([]float64, w*w)
		for i := range haloL {
			for j := range haloL {
				next[at(i, j)] = (a[at(i-1, j)] + a[at(i+1, j)] + a[at(i, j-1)] + a[at(i, j+1)]) / 4
			}
		}
		cur = next
	}
	sum := []float64{0}
	for i := range haloL {
		for j := range haloL {
			sum[0] += cur[at(i, j)] * haloWeight(x[0]*haloL+i, x[1]*haloL+j)
		}
	}
	check(comm.Allreduce(ct.Comm, sum, sum, comm.Sum), "halo checksum")
	// The whole field, serially.
	g := make([]float64, rows*cols)
	for i := range rows {
		for j := range cols {
			g[i*cols+j] = haloField(i, j)
		}
	}
	for range 3 {
		next := make([]float64, len(g))
		get := func(i, j int) float64 {
			if j < 0 || j >= cols {
				return 0
			}
			return g[((i+rows)%rows)*cols+j]
		}
		for i := range rows {
			for j := range cols {
				next[i*cols+j] = (get(i-1, j) + get(i+1, j) + get(i, j-1) + get(i, j+1)) / 4
			}
		}
		g = next
	}
	want := 0.0
	for i := range rows {
		for j := range cols {
			want += g[i*cols+j] * haloWeight(i, j)
		}
	}
	if sum[0] != want || math.IsNaN(want) {
		fail("stencil checksum %v, serial %v", sum[0], want)
	}
	check(ct.Close(), "close halo grid")
}

func haloWeight(gi, gj int) float64 { return float64(gi*7 + gj*3 + 1) }

// haloBySendrecv returns cur with its halo filled by Sendrecv along each dimension's Shift:
// my last row to the +1 neighbour, my first row's halo from the -1 neighbour, and the
// reverse. Halo cells past a non-periodic edge are 0.
func haloBySendrecv(ct *comm.Cart, cur []float64, at func(i, j int) int) []float64 {
	a := slices.Clone(cur)
	row := func(i int) []float64 {
		out := make([]float64, haloL)
		for j := range out {
			out[j] = a[at(i, j)]
		}
		return out
	}
	col := func(j int) []float64 {
		out := make([]float64, haloL)
		for i := range out {
			out[i] = a[at(i, j)]
		}
		return out
	}
	setRow := func(i int, v []float64) {
		for j := range v {
			a[at(i, j)] = v[j]
		}
	}
	setCol := func(j int, v []float64) {
		for i := range v {
			a[at(i, j)] = v[i]
		}
	}
	for d, get := range []func(int) []float64{row, col} {
		set := []func(int, []float64){setRow, setCol}[d]
		src, dst := ct.Shift(d, 1)
		lo, hi := make([]float64, haloL), make([]float64, haloL) // 0 where ProcNull
		_, err := comm.Sendrecv(ct.Comm, get(haloL-1), dst, 10+d, lo, src, 10+d)
		check(err, "halo sendrecv up")
		_, err = comm.Sendrecv(ct.Comm, get(0), src, 20+d, hi, dst, 20+d)
		check(err, "halo sendrecv down")
		set(-1, lo)
		set(haloL, hi)
	}
	return a
}

// haloByNeighbors is haloBySendrecv by one NeighborAlltoall: block 2d goes to the -1
// neighbour (my first row or column), 2d+1 to the +1; block 2d received is the -1
// neighbour's last, the halo before my first.
func haloByNeighbors(ct *comm.Cart, cur []float64, at func(i, j int) int) []float64 {
	a := slices.Clone(cur)
	send := make([]float64, 4*haloL)
	recv := make([]float64, 4*haloL) // 0 where ProcNull: untouched
	for k := range haloL {
		send[0*haloL+k], send[1*haloL+k] = a[at(0, k)], a[at(haloL-1, k)]
		send[2*haloL+k], send[3*haloL+k] = a[at(k, 0)], a[at(k, haloL-1)]
	}
	check(comm.NeighborAlltoall(ct, send, recv), "halo neighbor alltoall")
	for k := range haloL {
		a[at(-1, k)], a[at(haloL, k)] = recv[0*haloL+k], recv[1*haloL+k]
		a[at(k, -1)], a[at(k, haloL)] = recv[2*haloL+k], recv[3*haloL+k]
	}
	return a
}

// topoExchange: NeighborAlltoall of 8-byte and 256 KiB blocks (1 MiB a call) on a periodic
// 2-D grid, reordered; every block is its sender's.
func topoExchange(c *comm.Comm) {
	dims, err := comm.DimsCreate(c.Size(), []int{0, 0})
	check(err, "dims create")
	ct, err := c.Cart(dims, []bool{true, true}, true)
	check(err, "exchange grid")
	srcs, _ := ct.Neighbors()
	for call, size := range []int{8, 256 << 10} {
		send := make([]byte, 4*size)
		for j := range 4 {
			fill(send[j*size:(j+1)*size], ct.Rank()*8+j+call)
		}
		recv := make([]byte, 4*size)
		check(comm.NeighborAlltoall(ct, send, recv), "neighbor alltoall of %d-byte blocks", size)
		for i, s := range srcs {
			verify(recv[i*size:(i+1)*size], s*8+(i^1)+call, fmt.Sprintf("grid %v block %d of %d bytes from %d", dims, i, size, s))
		}
	}
	check(ct.Close(), "close exchange grid")
}

// topoGraph: NeighborAlltoallv on a graph with a ring, self edges, a repeated edge to rank 0
// and uneven counts (one of 100 KB); block i holds its edge's sender and number.
func topoGraph(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	var edges [][2]int
	for r := range n {
		edges = append(edges, [2]int{r, (r + 1) % n}, [2]int{r, 0}, [2]int{r, 0})
		if r%2 == 1 {
			edges = append(edges, [2]int{r, r})
		}
	}
	count := func(e int) int { return []int{2, 0, 12500, 1, 3}[e%5] }
	var srcs, dsts, in, out []int
	for e, ed := range edges {
		if ed[0] == me {
			dsts, out = append(dsts, ed[1]), append(out, e)
		}
		if ed[1] == me {
			srcs, in = append(srcs, ed[0]), append(in, e)
		}
	}
	g, err := c.DistGraph(srcs, dsts, false)
	check(err, "dist graph")
	elem := func(e, k int) int64 { return int64(edges[e][0])<<40 | int64(e)<<20 | int64(k) }
	var send []int64
	sc := make([]int, len(dsts))
	for j, e := range out {
		sc[j] = count(e)
		for k := range sc[j] {
			send = append(send, elem(e, k))
		}
	}
	rc := make([]int, len(srcs))
	total := 0
	for i, e := range in {
		rc[i] = count(e)
		total += rc[i]
	}
	recv := make([]int64, total)
	check(comm.NeighborAlltoallv(g, send, sc, nil, recv, rc, nil), "graph neighbor alltoallv")
	at := 0
	for i, e := range in {
		for k := range rc[i] {
			if recv[at+k] != elem(e, k) {
				fail("graph block %d (edge %d from %d) element %d: %#x, want %#x", i, e, srcs[i], k, recv[at+k], elem(e, k))
			}
		}
		at += rc[i]
	}
	check(g.Close(), "close graph")
}

// topoCreateGroup: the even ranks make a communicator while the odd ones pass messages in a
// ring on the world; the evens' allreduce is right.
func topoCreateGroup(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	var evens, odds []int
	for r := range n {
		if r%2 == 0 {
			evens = append(evens, r)
		} else {
			odds = append(odds, r)
		}
	}
	g, err := c.Group().Incl(evens)
	check(err, "group of evens")
	sub, err := c.CreateGroup(g, 9)
	check(err, "create group")
	if me%2 == 1 {
		if sub != nil {
			fail("an odd rank got the evens' communicator")
		}
		i, k := me/2, len(odds)
		for round := range 10 {
			got := []int64{-1}
			_, err := comm.Sendrecv(c, []int64{int64(me*100 + round)}, odds[(i+1)%k], 9, got, odds[(i-1+k)%k], 9)
			check(err, "odd ring")
			if want := int64(odds[(i-1+k)%k]*100 + round); got[0] != want {
				fail("odd ring round %d: %d, want %d", round, got[0], want)
			}
		}
	} else {
		sum := []int64{int64(me)}
		check(comm.Allreduce(sub, sum, sum, comm.Sum), "allreduce over the evens")
		want := int64(0)
		for _, r := range evens {
			want += int64(r)
		}
		if sum[0] != want || sub.Size() != len(evens) || sub.Rank() != me/2 {
			fail("evens' communicator: rank %d of %d, sum %d (want %d)", sub.Rank(), sub.Size(), sum[0], want)
		}
		check(sub.Close(), "close evens")
	}
	check(c.Barrier(), "barrier")
}

// topoMembers returns the world ranks of sub's members, in sub's order.
func topoMembers(c, sub *comm.Comm) []int {
	all := make([]int64, sub.Size())
	check(comm.Allgather(sub, []int64{int64(c.Rank())}, all), "allgather members")
	out := make([]int, len(all))
	for i, w := range all {
		out[i] = int(w)
	}
	return out
}

// topoSplitTypes: each kind's communicator holds ranks of this rank's node only, its members
// agree on who they are, and where the machine has at most one domain of the kind (or ranks
// are not bound inside one) it is the whole node.
func topoSplitTypes(c *comm.Comm) {
	node, err := c.SplitNode()
	check(err, "split node")
	nodeRanks := topoMembers(c, node)
	m, err := topology.Discover()
	check(err, "discover")
	for _, k := range []struct {
		kind  comm.SplitKind
		level topology.Level
	}{{comm.SplitNUMA, topology.LevelNUMA}, {comm.SplitL3, topology.LevelL3}, {comm.SplitSocket, topology.LevelPackage}} {
		st, err := c.SplitType(k.kind, c.Rank())
		check(err, "split type %v", k.level)
		members := topoMembers(c, st)
		for _, r := range members {
			if !slices.Contains(nodeRanks, r) {
				fail("split %v holds rank %d, not on my node %v", k.level, r, nodeRanks)
			}
		}
		if !slices.IsSorted(members) || !slices.Contains(members, c.Rank()) {
			fail("split %v holds %v", k.level, members)
		}
		// Every member sees the same members: the smallest and largest of a hash agree.
		h := int64(0)
		for _, r := range members {
			h = h*131 + int64(r) + 1
		}
		lo, hi := []int64{h}, []int64{h}
		check(comm.Allreduce(st, lo, lo, comm.Min), "allreduce")
		check(comm.Allreduce(st, hi, hi, comm.Max), "allreduce")
		if lo[0] != hi[0] {
			fail("split %v: members disagree on who they are", k.level)
		}
		if len(m.Domains(k.level)) <= 1 && !slices.Equal(members, nodeRanks) {
			fail("split %v holds %v, want the node's %v (%d domains)", k.level, members, nodeRanks, len(m.Domains(k.level)))
		}
		if c.Rank() == 0 {
			fmt.Printf("topo splittype %v size %d node %d\n", k.level, st.Size(), node.Size())
		}
		check(st.Close(), "close split")
	}
	check(node.Close(), "close node")
}

// topoCross counts the neighbour pairs of 2-D grids (row-major and reordered) whose ranks
// talk over TCP, and, where the transport is chosen per pair (not forced), checks that the
// same pairs are on different nodes by SplitNode.
func topoCross(c *comm.Comm) {
	node, err := c.SplitNode()
	check(err, "split node")
	lead := node.Group().Translate([]int{0}, c.Group())[0]
	nodes := make([]int64, c.Size())
	check(comm.Allgather(c, []int64{int64(lead)}, nodes), "allgather nodes")
	check(node.Close(), "close node")
	auto := os.Getenv("GORUN_TRANSPORT") == "" || os.Getenv("GORUN_TRANSPORT") == "auto"
	dims, err := comm.DimsCreate(c.Size(), []int{0, 0})
	check(err, "dims create")
	for _, periodic := range [][]bool{{false, false}, {true, true}} {
		var counts [2]int64
		for i, reorder := range []bool{false, true} {
			ct, err := c.Cart(dims, periodic, reorder)
			check(err, "cross grid")
			srcs, _ := ct.Neighbors()
			// This rank's +1 neighbours, as world ranks.
			var plus []int
			for d := range dims {
				if s := srcs[2*d+1]; s != comm.ProcNull {
					plus = append(plus, s)
				}
			}
			world := ct.Group().Translate(plus, c.Group())
			mine := []int64{0, 0} // over TCP, on another node
			for _, w := range world {
				p, err := c.Path(w)
				check(err, "path")
				if p == "tcp" {
					mine[0]++
				}
				if nodes[w] != nodes[c.Rank()] {
					mine[1]++
				}
			}
			check(comm.Allreduce(c, mine, mine, comm.Sum), "allreduce counts")
			if auto && mine[0] != mine[1] {
				fail("grid %v periodic %v reorder %v: %d neighbour pairs over TCP, %d across nodes", dims, periodic, reorder, mine[0], mine[1])
			}
			counts[i] = mine[0]
			check(ct.Close(), "close cross grid")
		}
		if c.Rank() == 0 {
			fmt.Printf("topo cross %v %v rowmajor %d reorder %d\n", dims, periodic, counts[0], counts[1])
		}
	}
}
