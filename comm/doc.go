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
// Every buffer is a Go slice of an Elem type (the fixed-size numeric kinds and named types
// over them). Go methods cannot take type parameters, so typed operations are package
// functions taking the communicator first: comm.Send(c, buf, dst, tag). A receive's
// Status.Count is in elements of its type; a message whose size is not a whole number of
// elements is an ErrCount error.
//
// # Point-to-point semantics
//
// Send is MPI's standard mode: a message up to the eager limit is buffered and Send returns
// at once; a larger one waits until the receiver has matched it (rendezvous), so an
// unexpected large message never fills the receiver's memory. Ssend always waits for the
// match. Messages between one pair of ranks on one communicator are never reordered: two
// messages from the same sender that both match a receive are received in send order,
// whatever their sizes and whichever transport carries them (shared memory within a node,
// TCP between nodes).
//
// # Errors
//
// Calls return errors, never panic on bad input: ErrRank, ErrTag, ErrTruncate (with both
// sizes in a *TruncateError), ErrPeerLost (a *PeerLostError naming the rank) when a peer
// dies, ErrClosed after Close. Use errors.Is and errors.As.
package comm
