// Package comm is gorun's public API: MPI-style messaging between the ranks of a parallel Go
// program.
//
// Write the program against comm, then start N copies of it:
//
//	gorun -n 4 ./prog                 # gorun builds ./prog once and starts 4 ranks
//	srun --mpi=pmi2 -n 64 ./prog      # or under Slurm, or MPICH's mpiexec
//	go run ./prog                     # without a launcher: a world of one rank
//
// A minimal program:
//
//	world, err := comm.Init()
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer world.Close()
//	sum := make([]float64, 1)
//	err = comm.Allreduce(world, []float64{float64(world.Rank())}, sum, comm.Sum)
//
// # Buffers and types
//
// Every buffer is a Go slice. Data movement (Send, Recv, Bcast, Gather, Alltoall, …) takes
// any pointer-free element type: numeric kinds, arrays and structs of them, padding bytes
// included; a type holding a pointer, string, slice, map, interface, channel or func is an
// ErrType error (a *TypeError naming the field) on every rank before anything is sent.
// Reductions with built-in ops take Number types. Go methods cannot take type parameters, so
// typed operations are package functions taking the communicator first: comm.Send(c, buf,
// dst, tag). A receive's Status.Count is in elements of its type; a message whose size is not
// a whole number of elements is an ErrCount error.
//
// # Point-to-point semantics
//
// Send is MPI's standard mode: a message up to the eager limit is buffered and Send returns
// at once; a larger one waits until the receiver has matched it (rendezvous), so an
// unexpected large message never fills the receiver's memory. Ssend always waits for the
// match. Messages between one pair of ranks on one communicator are never reordered: two
// messages from the same sender that both match a receive are received in send order,
// whatever their sizes and whichever transport carries them (shared memory within a node,
// TCP between nodes). ProcNull names nobody: a send to it or a receive (or probe) from it
// completes at once, a receive with Status{Source: ProcNull, Tag: AnyTag, Count: 0}.
//
// # Goroutines
//
// A *Comm is safe for concurrent use (MPI_THREAD_MULTIPLE). Precisely:
//
//   - Any number of goroutines may call Send, Ssend, Recv, Sendrecv, Isend, Irecv, Probe and
//     Iprobe on one communicator at once.
//   - Messages one goroutine sends one after another to a rank keep their order at the
//     receiver. Messages that different goroutines send at the same moment are ordered as the
//     transport happens to take them; there is no order to rely on between them.
//   - Receives are matched in the order they were posted. Receives that several goroutines
//     post at the same moment are posted in some order, which the program cannot choose; give
//     each goroutine its own tag (or source) when it must get particular messages.
//   - Probe describes a message that another goroutine may receive before this one does: with
//     several receivers on one (source, tag), follow Probe with a receive on a tag only this
//     goroutine uses.
//   - A Request may be waited or tested from any goroutine, and by several at once. Its buffer
//     must not be touched until it has completed.
//   - Collectives: one goroutine at a time per communicator, every rank calling them in the
//     same order (as in MPI). Different communicators (see Dup) may run collectives
//     concurrently from different goroutines.
//   - Close the world once, after every goroutine has finished communicating. Waiting blocks
//     only the waiting goroutine: while one goroutine waits, others compute, and one of the
//     waiting goroutines drives shared-memory progress for all of them.
//
// # Communicators
//
// Dup and Split make communicators with contexts of their own (their traffic never matches
// receives on another communicator); SplitType groups the ranks that share a node, a NUMA
// node, an L3 cache or a socket; CreateGroup makes one from a Group, collectively over its
// members only. Cart and DistGraph make communicators with a process topology, for the
// neighbourhood collectives (NeighborAlltoall, …). Ranks in Status and in calls are the
// communicator's. Every communicator whose ranks share a node runs its collectives in that
// node's shared memory, as the world does (up to eight derived communicators per node at a
// time hold shared memory; later ones run point to point until some are closed).
//
// # Errors
//
// Calls return errors, never panic on bad input: ErrRank, ErrTag, ErrType, ErrTruncate (with
// both sizes in a *TruncateError), ErrPeerLost (a *PeerLostError naming the rank) when a peer
// dies, ErrClosed after Close. Use errors.Is and errors.As.
package comm
