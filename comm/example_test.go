package comm_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/gorun-hpc/gorun/comm"
)

// Started without a launcher (go run, go test), a program is a world of one rank, as these
// examples are. Under gorun -n 4 the same program runs on four ranks: this one prints
// "ranks: 4, sum of ranks: 6".
func Example() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	me, n := world.Rank(), world.Size()
	sum := make([]float64, 1)
	if err := comm.Allreduce(world, []float64{float64(me)}, sum, comm.Sum); err != nil {
		log.Fatal(err)
	}
	if me == 0 {
		fmt.Printf("ranks: %d, sum of ranks: %v\n", n, sum[0])
	}
	// Output: ranks: 1, sum of ranks: 0
}

// A small message is buffered, so a rank may even send to itself before it receives. Status
// says who sent what: Count is in elements of the receive's type.
func ExampleSend() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	if err := comm.Send(world, []int32{1, 2, 3}, world.Rank(), 7); err != nil {
		log.Fatal(err)
	}
	buf := make([]int32, 10)
	st, err := comm.Recv(world, buf, comm.AnySource, comm.AnyTag)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("from", st.Source, "tag", st.Tag, "got", buf[:st.Count])
	// Output: from 0 tag 7 got [1 2 3]
}

// A receive buffer smaller than the message gets the message's start and an ErrTruncate
// error that gives both sizes (in bytes).
func ExampleRecv_truncated() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	if err := comm.Send(world, []float64{1, 2, 3, 4}, 0, 0); err != nil {
		log.Fatal(err)
	}
	small := make([]float64, 2)
	_, err = comm.Recv(world, small, 0, 0)
	var te *comm.TruncateError
	if errors.As(err, &te) {
		fmt.Println(small, "of a message of", te.Size, "bytes into", te.Cap)
	}
	// Output: [1 2] of a message of 32 bytes into 16
}

// Every rank passes its value to the right and gets its left neighbour's: Sendrecv never
// deadlocks, whatever the size. In a world of one, both neighbours are the rank itself.
func ExampleSendrecv() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	me, n := world.Rank(), world.Size()
	right, left := (me+1)%n, (me+n-1)%n
	got := make([]int64, 1)
	st, err := comm.Sendrecv(world, []int64{int64(100 + me)}, right, 0, got, left, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rank", me, "got", got[0], "from", st.Source)
	// Output: rank 0 got 100 from 0
}

// Nonblocking calls return at once; the buffers belong to the requests until they complete.
func ExampleIsend() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	in := make([]uint8, 5)
	recv, err := comm.Irecv(world, in, 0, 1)
	if err != nil {
		log.Fatal(err)
	}
	send, err := comm.Isend(world, []uint8("hello"), 0, 1)
	if err != nil {
		log.Fatal(err)
	}
	// ... compute while the message travels ...
	if err := comm.WaitAll(send, recv); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(in))
	// Output: hello
}

// Probe describes a message before it is received (Count in bytes), so the receive can be
// sized to fit.
func ExampleProbe() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	if err := comm.Send(world, []float32{0.5, 1.5, 2.5}, 0, 3); err != nil {
		log.Fatal(err)
	}
	st, err := comm.Probe(world, comm.AnySource, comm.AnyTag)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]float32, st.Count/4)
	if _, err := comm.Recv(world, buf, st.Source, st.Tag); err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Count, "bytes:", buf)
	// Output: 12 bytes: [0.5 1.5 2.5]
}

// The root's buffer is copied to every rank.
func ExampleBcast() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	params := make([]float64, 2)
	if world.Rank() == 0 {
		params[0], params[1] = 0.01, 1e-6 // only the root knows them
	}
	if err := comm.Bcast(world, params, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Println(params)
	// Output: [0.01 1e-06]
}

// Reduce leaves the elementwise result at the root only; Max here.
func ExampleReduce() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	local := []int32{3, -1, 7}
	best := make([]int32, len(local))
	if err := comm.Reduce(world, local, best, comm.Max, 0); err != nil {
		log.Fatal(err)
	}
	if world.Rank() == 0 {
		fmt.Println(best)
	}
	// Output: [3 -1 7]
}

// A bitwise operation on floating-point numbers is an error on every rank, never a panic.
func ExampleAllreduce_badOp() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	x := []float64{1}
	err = comm.Allreduce(world, x, x, comm.Band)
	fmt.Println(errors.Is(err, comm.ErrOp))
	// Output: true
}

// A user-defined operation need only be associative: it is applied in rank order, with the
// lower ranks' contribution in in (as MPI's invec) and the result left in inout. Here, the
// value of largest magnitude, the lower rank's of two equal ones. (A world of one has
// nothing to combine: f is not called, and every rank gets its own data back.)
func ExampleAllreduceFunc() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	largest := func(inout, in []float64) {
		for i := range inout {
			if max(in[i], -in[i]) >= max(inout[i], -inout[i]) {
				inout[i] = in[i]
			}
		}
	}
	got := make([]float64, 2)
	if err := comm.AllreduceFunc(world, []float64{-4, 2}, got, largest); err != nil {
		log.Fatal(err)
	}
	fmt.Println(got)
	// Output: [-4 2]
}

// Gather concatenates every rank's block at the root, in rank order; Scatter is its inverse.
func ExampleGather() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	me, n := world.Rank(), world.Size()
	var all []int64
	if me == 0 {
		all = make([]int64, 2*n)
	}
	if err := comm.Gather(world, []int64{int64(me), int64(me * me)}, all, 0); err != nil {
		log.Fatal(err)
	}
	mine := make([]int64, 2)
	if err := comm.Scatter(world, all, mine, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Println(all, mine)
	// Output: [0 0] [0 0]
}

// Allgather leaves every rank's block on every rank; Alltoall sends block j to rank j.
func ExampleAllgather() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	n := world.Size()
	ids := make([]int32, n)
	if err := comm.Allgather(world, []int32{int32(world.Rank()) + 10}, ids); err != nil {
		log.Fatal(err)
	}
	out, in := make([]int32, n), make([]int32, n)
	for j := range out {
		out[j] = int32(100*world.Rank() + j) // block j is for rank j
	}
	if err := comm.Alltoall(world, out, in); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ids, in)
	// Output: [10] [0]
}

// Scan leaves at rank i the reduction over ranks 0…i: here, where each rank's part of a
// shared array begins (an exclusive prefix, from the inclusive one).
func ExampleScan() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	count := []int64{5} // this rank's number of items
	end := make([]int64, 1)
	if err := comm.Scan(world, count, end, comm.Sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println("items", end[0]-count[0], "to", end[0])
	// Output: items 0 to 5
}

// ReduceScatterBlock reduces and leaves block i of the result at rank i.
func ExampleReduceScatterBlock() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	n := world.Size()
	votes := make([]int32, 2*n) // two counters per rank
	votes[0], votes[1] = 4, 9
	mine := make([]int32, 2)
	if err := comm.ReduceScatterBlock(world, votes, mine, comm.Sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println(mine)
	// Output: [4 9]
}

// Split groups ranks by color, ordered by key; each group has its own ranks and its own
// matching context. Dup copies a communicator, for a library that must not see the
// program's messages.
func ExampleComm_Split() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	me := world.Rank()
	half, err := world.Split(me%2, me)
	if err != nil {
		log.Fatal(err)
	}
	defer half.Close()
	lib, err := world.Dup()
	if err != nil {
		log.Fatal(err)
	}
	defer lib.Close()
	if err := lib.Barrier(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("world rank %d is rank %d of %d in half %d\n", me, half.Rank(), half.Size(), me%2)
	// Output: world rank 0 is rank 0 of 1 in half 0
}

// After Close every call is an ErrClosed error; Close itself may be called again.
func ExampleComm_Close() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	if err := world.Close(); err != nil {
		log.Fatal(err)
	}
	err = comm.Send(world, []byte("late"), 0, 0)
	fmt.Println(errors.Is(err, comm.ErrClosed), world.Close())
	// Output: true <nil>
}
