package bench

import (
	"fmt"

	"github.com/gorun-hpc/gorun/comm"
)

// The halo exchange of a 2-D stencil, two ways. The ranks form a periodic grid
// (comm.DimsCreate(N, [0, 0]): 2 ranks 2×1, 4 ranks 2×2, 8 ranks 4×2; Cart periodic in both
// dimensions, no reorder) and one call sends a face of size bytes to each of the 4 grid
// neighbours and receives one from each, 4·size bytes each way:
//
//	neighbor_alltoall  comm.NeighborAlltoall over the Cart: block j of send to neighbour j,
//	                   block i of recv from neighbour i
//	neighbor_isend     the same exchange by hand on the Cart's communicator: 4 comm.Irecv, 4
//	                   comm.Isend to the neighbours Shift(d, 1) gives, one comm.WaitAll
//
// They are two subcommands, not two columns of one, so that each prints OSU's collective
// columns for one operation and lines up row for row with the C anchor (anchors/neighbor.c)
// and with the other; a session runs them back to back to compare.
//
// Neighbour j is Neighbors' order: per dimension d, 2d the -1 and 2d+1 the +1 neighbour. The
// face a rank sends to its -1 neighbour is, at that neighbour, the face from its +1 neighbour,
// so face j travels with tag j^1 and recv block i takes tag i (what Cart does inside
// NeighborAlltoall); that keeps the faces apart where one rank is both neighbours along a
// dimension of 2 ranks (or of 1: the rank itself). Timing as in coll.go. After the timed
// calls each rank checks that block i of recv holds face i^1 of its neighbour's send, so a
// benchmark that moved the wrong bytes fails instead of printing a number.

// neighborBenchmarks are registered after the v-collectives.
var neighborBenchmarks = []benchmark{
	{name: "neighbor_alltoall", title: "gorun Neighbor Alltoall Latency Test",
		summary: "NeighborAlltoall on a 2-D periodic grid, 4 faces of size bytes",
		columns: collColumns, counts: collCounts, minSize: 8, maxSize: maxColl, sized: true,
		measure: measureNeighborAlltoall},
	{name: "neighbor_isend", title: "gorun Neighbor Isend/Irecv Exchange Latency Test",
		summary: "the same exchange with Irecv, Isend and WaitAll to the 4 neighbours",
		columns: collColumns, counts: collCounts, minSize: 8, maxSize: maxColl, sized: true,
		measure: measureNeighborIsend},
}

// faces is the number of neighbours of a rank in a 2-D grid.
const faces = 4

// grid returns the periodic 2-D grid over every rank of c. Collective over c; the caller
// closes it.
func grid(c *comm.Comm) (*comm.Cart, error) {
	dims, err := comm.DimsCreate(c.Size(), []int{0, 0})
	if err != nil {
		return nil, err
	}
	return c.Cart(dims, []bool{true, true}, false)
}

// faceBuffers returns send, face j filled with faceByte(j), and a zeroed recv of the same
// length, every page of both touched.
func faceBuffers(size int) (send, recv []byte) {
	send = make([]byte, faces*size)
	for j := range faces {
		copy(send[j*size:(j+1)*size], payload(size, faceByte(j)))
	}
	return send, payload(faces*size, 0)
}

func faceByte(j int) byte { return 'a' + byte(j) }

// checkFaces reports the first block of recv that does not hold face i^1 of the neighbour's
// send.
func checkFaces(recv []byte, size int) error {
	for i := range faces {
		want := faceByte(i ^ 1)
		for k, b := range recv[i*size : (i+1)*size] {
			if b != want {
				return fmt.Errorf("block %d of recv, byte %d: %q, want %q (face %d of neighbour %d)", i, k, b, want, i^1, i)
			}
		}
	}
	return nil
}

func measureNeighborAlltoall(e *env, size, iters, warmup int) ([]float64, error) {
	cart, err := grid(e.c)
	if err != nil {
		return nil, err
	}
	defer cart.Close()
	send, recv := faceBuffers(size)
	row, err := timeCollective(cart.Comm, iters, warmup, func() error { return comm.NeighborAlltoall(cart, send, recv) })
	if err != nil {
		return nil, err
	}
	return row, checkFaces(recv, size)
}

func measureNeighborIsend(e *env, size, iters, warmup int) ([]float64, error) {
	cart, err := grid(e.c)
	if err != nil {
		return nil, err
	}
	defer cart.Close()
	var nb [faces]int // per dimension the -1, then the +1 neighbour
	for d := range 2 {
		nb[2*d], nb[2*d+1] = cart.Shift(d, 1)
	}
	send, recv := faceBuffers(size)
	reqs := make([]*comm.Request, 2*faces)
	exchange := func() error {
		// On an error the requests already posted stay in flight: the rank then exits.
		for i, src := range nb {
			q, err := comm.Irecv(cart.Comm, recv[i*size:(i+1)*size], src, i)
			if err != nil {
				return err
			}
			reqs[i] = q
		}
		for j, dst := range nb {
			q, err := comm.Isend(cart.Comm, send[j*size:(j+1)*size], dst, j^1)
			if err != nil {
				return err
			}
			reqs[faces+j] = q
		}
		return comm.WaitAll(reqs...)
	}
	row, err := timeCollective(cart.Comm, iters, warmup, exchange)
	if err != nil {
		return nil, err
	}
	return row, checkFaces(recv, size)
}
