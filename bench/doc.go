// Package bench is gorun's benchmark suite: the OSU micro-benchmarks' method and output
// layout over package comm, the linear latency model of the reference text fitted per path,
// the batching trade-off, and plots.
//
// Two kinds of run:
//
//   - Rank benchmarks (latency, bw, bibw, mbw_mr, multi_lat, stream_lat, bcast, allreduce,
//     reduce, barrier, allgather, alltoall, gather, scatter, reduce_scatter, gatherv,
//     scatterv, allgatherv, alltoallv, neighbor_alltoall, neighbor_isend) run inside a job: every rank calls Run with the world
//     communicator, rank 0 prints OSU's table and returns the Result.
//
//     gorun -n 2 ./cmd/gorun-bench latency -m 1:65536
//
//   - Drivers start their own jobs through launcher.Run, one job per setting, since the
//     transport and the protocol thresholds are fixed when a rank starts: Model measures every
//     message path, fits L(s) = a + b·s to each and writes the chosen thresholds as a tuning
//     file (tuning.WriteFile); Batching compares the message rate and the added latency
//     with and without shared-memory batching.
//
// Nothing here asserts a timing; the numbers are for people and for the tuning file.
package bench
