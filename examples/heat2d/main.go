// Command heat2d solves the steady heat equation on a square plate by Jacobi iteration: the
// plate is an nx × ny grid of cells whose top edge is held at 1.0 and whose other edges are
// held at 0; every step replaces each cell by the mean of its four neighbours.
//
// The grid is cut into blocks over a 2-D Cartesian communicator (DimsCreate, Cart; not
// periodic), one block per rank, uneven by at most a row and a column when the ranks do not
// divide the grid. Every step, one NeighborAlltoallv swaps the four faces of every block with
// its neighbours; past the plate's edge the neighbour is ProcNull, and the receive block for
// it, which the exchange leaves as it is, holds the edge's fixed temperature. Every -every
// steps Allreduce(Max) gives the residual, the largest change of a cell in that step. At the
// end Gatherv collects the plate on rank 0, which prints a checksum of its bits.
//
// Each cell's new value is the same expression of the same old values on any number of ranks,
// so the output (apart from the line naming the ranks) is bit for bit that of -serial, which
// computes the whole plate on rank 0 without communicating.
//
//	go run ./cmd/gorun -n 4 ./examples/heat2d
//	go run ./cmd/gorun -n 8 ./examples/heat2d -nx 2048 -ny 1024 -iters 1000 -time
//	go run ./cmd/gorun -n 1 ./examples/heat2d -serial
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"hash/fnv"
	"log"
	"math"
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// hot is the temperature of the top edge; the other three edges are at 0.
const hot = 1.0

// run is what the flags ask for.
type run struct {
	nx, ny, iters, every int
	reorder, timing      bool
}

func main() {
	var r run
	flag.IntVar(&r.nx, "nx", 512, "grid columns")
	flag.IntVar(&r.ny, "ny", 512, "grid rows")
	flag.IntVar(&r.iters, "iters", 500, "Jacobi iterations")
	flag.IntVar(&r.every, "every", 100, "print the residual every this many iterations (0: only at the end)")
	flag.BoolVar(&r.reorder, "reorder", true, "let Cart place the blocks so that neighbours share nodes")
	flag.BoolVar(&r.timing, "time", false, "print the mean time of a halo exchange")
	serial := flag.Bool("serial", false, "compute everything on rank 0, without communication (the reference)")
	flag.Parse()
	if r.nx < 1 || r.ny < 1 || r.iters < 0 {
		log.Fatalf("heat2d: a %dx%d grid and %d iterations: need at least one cell and no negative count", r.nx, r.ny, r.iters)
	}

	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	if *serial {
		if world.Rank() == 0 {
			r.serial()
		}
		return
	}
	if err := r.parallel(world); err != nil {
		log.Fatalf("rank %d: %v", world.Rank(), err)
	}
}

// serial computes the whole grid in one block, with the fixed edges in its halo.
func (r run) serial() {
	d := newBlock(r.nx, r.ny, true)
	var res float64
	for it := 1; it <= r.iters; it++ {
		res = d.sweep()
		if r.reports(it) {
			fmt.Printf("iter %d residual %.6e\n", it, res)
		}
	}
	fmt.Printf("checksum %016x\n", checksum(d.interior()))
	fmt.Printf("heat2d: %dx%d grid on 1 rank (1x1, serial), %d iterations, final residual %.6e\n", r.nx, r.ny, r.iters, res)
}

// reports says whether iteration it (from 1) computes and prints the global residual.
func (r run) reports(it int) bool {
	return it == r.iters || r.every > 0 && it%r.every == 0
}

// parallel runs the solver over a Cartesian grid of every rank of world.
func (r run) parallel(world *comm.Comm) error {
	dims, err := comm.DimsCreate(world.Size(), []int{0, 0})
	if err != nil {
		return err
	}
	// Dimension 0 of the grid of ranks runs down the rows, dimension 1 across the columns.
	py, px := dims[0], dims[1]
	if r.ny < py || r.nx < px {
		return fmt.Errorf("a %dx%d grid cannot be cut into %dx%d blocks of at least one cell", r.nx, r.ny, px, py)
	}
	cart, err := world.Cart(dims, []bool{false, false}, r.reorder)
	if err != nil || cart == nil { // nil: a rank outside the grid, which DimsCreate leaves none of
		return err
	}
	me := cart.Coords(cart.Rank())
	_, lx := span(r.nx, px, me[1])
	_, ly := span(r.ny, py, me[0])
	d := newBlock(lx, ly, me[0] == 0)
	h := newHalo(cart, d)

	var res float64
	var spent time.Duration
	for it := 1; it <= r.iters; it++ {
		start := time.Now()
		if err := h.exchange(d); err != nil {
			return fmt.Errorf("halo exchange: %w", err)
		}
		spent += time.Since(start)
		local := d.sweep()
		if !r.reports(it) {
			continue
		}
		global := []float64{0}
		if err := comm.Allreduce(cart.Comm, []float64{local}, global, comm.Max); err != nil {
			return fmt.Errorf("residual: %w", err)
		}
		if res = global[0]; cart.Rank() == 0 {
			fmt.Printf("iter %d residual %.6e\n", it, res)
		}
	}
	return r.finish(cart, d, res, spent)
}

// finish gathers the grid on rank 0 of cart, which prints its checksum and the summary, and
// the exchange's time if asked.
func (r run) finish(cart *comm.Cart, d *block, res float64, spent time.Duration) error {
	all, err := gather(cart, d, r.nx, r.ny)
	if err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	var sum, slowest []float64
	if r.timing {
		t := []float64{spent.Seconds() / float64(max(r.iters, 1))}
		sum, slowest = []float64{0}, []float64{0}
		if err := comm.Allreduce(cart.Comm, t, sum, comm.Sum); err != nil {
			return err
		}
		if err := comm.Allreduce(cart.Comm, t, slowest, comm.Max); err != nil {
			return err
		}
	}
	if cart.Rank() != 0 {
		return nil
	}
	dims := cart.Dims()
	fmt.Printf("checksum %016x\n", checksum(all))
	fmt.Printf("heat2d: %dx%d grid on %d ranks (%dx%d), %d iterations, final residual %.6e\n",
		r.nx, r.ny, cart.Size(), dims[1], dims[0], r.iters, res)
	if r.timing {
		fmt.Printf("halo exchange: %.2f µs per iteration (mean over ranks), %.2f µs on the slowest rank\n",
			sum[0]/float64(cart.Size())*1e6, slowest[0]*1e6)
	}
	return nil
}

// span is the part of n cells that block c of p gets: the first n%p blocks have one more.
func span(n, p, c int) (start, size int) {
	base, extra := n/p, n%p
	return c*base + min(c, extra), base + btoi(c < extra)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A block is one rank's cells, ly rows of lx, surrounded by a halo of one cell: the
// neighbours' faces, or the fixed edge temperature past the grid's edge. Rows are stored one
// after the other, w = lx+2 values each:
//
//	row 0       | corner | north halo: lx values        | corner |
//	row 1..ly   | west   | the block's cells: lx values | east   |
//	row ly+1    | corner | south halo: lx values        | corner |
//
// The corners are never read (the stencil has no diagonals). cur holds the values of the
// current step; sweep writes the next step's into next and swaps the two.
type block struct {
	lx, ly    int
	cur, next []float64
}

// newBlock makes a block of lx × ly cells at 0, with the edge temperatures in both arrays'
// halos where the block touches the grid's edge: top, if its north halo is the hot edge.
func newBlock(lx, ly int, top bool) *block {
	d := &block{lx: lx, ly: ly}
	w := lx + 2
	d.cur, d.next = make([]float64, w*(ly+2)), make([]float64, w*(ly+2))
	if top {
		for _, u := range [][]float64{d.cur, d.next} {
			for j := 1; j <= lx; j++ {
				u[j] = hot
			}
		}
	}
	return d // the other edges are at 0, as made
}

// sweep computes one Jacobi step from cur into next, swaps them, and returns the largest
// change of a cell. Every cell is 0.25 × (north + south + west + east), added in that order.
func (d *block) sweep() float64 {
	w := d.lx + 2
	var res float64
	for i := 1; i <= d.ly; i++ {
		north, row, south := d.cur[(i-1)*w:i*w], d.cur[i*w:(i+1)*w], d.cur[(i+1)*w:(i+2)*w]
		out := d.next[i*w : (i+1)*w]
		for j := 1; j <= d.lx; j++ {
			v := 0.25 * (north[j] + south[j] + row[j-1] + row[j+1])
			res = max(res, math.Abs(v-row[j]))
			out[j] = v
		}
	}
	d.cur, d.next = d.next, d.cur
	return res
}

// interior returns the block's cells, row by row, without the halo.
func (d *block) interior() []float64 {
	w := d.lx + 2
	out := make([]float64, 0, d.lx*d.ly)
	for i := 1; i <= d.ly; i++ {
		out = append(out, d.cur[i*w+1:i*w+1+d.lx]...)
	}
	return out
}

// A halo is the exchange of a block's faces with its neighbours on the grid of ranks. Its
// buffers hold four blocks, in the order of Cart.Neighbors: north (-1 along dimension 0),
// south (+1), west (-1 along dimension 1), east (+1); rows are lx values, columns ly.
//
//	send, recv: | north: lx | south: lx | west: ly | east: ly |
//
// send's blocks are the block's outermost rows and columns, recv's the halo's. A neighbour
// past the grid's edge is ProcNull: its recv block is never written, and holds the edge's
// temperature from the start, so unpacking it rewrites the halo with what it held.
type halo struct {
	cart       *comm.Cart
	send, recv []float64
	counts     []int
}

func newHalo(cart *comm.Cart, d *block) *halo {
	h := &halo{cart: cart, counts: []int{d.lx, d.lx, d.ly, d.ly}}
	n := 2*d.lx + 2*d.ly
	h.send, h.recv = make([]float64, n), make([]float64, n)
	if north, _ := cart.Shift(0, 1); north == comm.ProcNull {
		for j := range d.lx {
			h.recv[j] = hot
		}
	}
	return h
}

// exchange sends the block's faces to its neighbours and fills its halo with theirs.
func (h *halo) exchange(d *block) error {
	w, lx, ly := d.lx+2, d.lx, d.ly
	u, s, r := d.cur, h.send, h.recv
	copy(s[0:lx], u[w+1:w+1+lx])          // first row, to the north
	copy(s[lx:2*lx], u[ly*w+1:ly*w+1+lx]) // last row, to the south
	for i := 1; i <= ly; i++ {
		s[2*lx+i-1] = u[i*w+1]     // first column, to the west
		s[2*lx+ly+i-1] = u[i*w+lx] // last column, to the east
	}
	if err := comm.NeighborAlltoallv(h.cart, s, h.counts, nil, r, h.counts, nil); err != nil {
		return err
	}
	copy(u[1:1+lx], r[0:lx])
	copy(u[(ly+1)*w+1:(ly+1)*w+1+lx], r[lx:2*lx])
	for i := 1; i <= ly; i++ {
		u[i*w] = r[2*lx+i-1]
		u[i*w+lx+1] = r[2*lx+ly+i-1]
	}
	return nil
}

// gather collects every rank's block on rank 0 of cart and returns there the nx × ny grid,
// row by row (nil elsewhere). Rank 0 knows every block's place from its coordinates.
func gather(cart *comm.Cart, d *block, nx, ny int) ([]float64, error) {
	mine := d.interior()
	if cart.Rank() != 0 {
		return nil, comm.Gatherv(cart.Comm, mine, nil, nil, nil, 0)
	}
	dims := cart.Dims()
	counts, displs := make([]int, cart.Size()), make([]int, cart.Size())
	total := 0
	for r := range counts {
		c := cart.Coords(r)
		_, ly := span(ny, dims[0], c[0])
		_, lx := span(nx, dims[1], c[1])
		counts[r], displs[r] = lx*ly, total
		total += lx * ly
	}
	blocks := make([]float64, total)
	if err := comm.Gatherv(cart.Comm, mine, blocks, counts, displs, 0); err != nil {
		return nil, err
	}
	all := make([]float64, nx*ny)
	for r := range counts {
		c := cart.Coords(r)
		y0, ly := span(ny, dims[0], c[0])
		x0, lx := span(nx, dims[1], c[1])
		for i := range ly {
			copy(all[(y0+i)*nx+x0:][:lx], blocks[displs[r]+i*lx:][:lx])
		}
	}
	return all, nil
}

// checksum is FNV-64a of the values' bits, little-endian, in order.
func checksum(vs []float64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, v := range vs {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		h.Write(b[:])
	}
	return h.Sum64()
}
