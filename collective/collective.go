// Package collective holds the algorithms behind comm's collective operations: barrier,
// broadcast, reductions, gathers and the rest. It does no I/O of its own: every algorithm runs
// over the narrow Comm interface that comm gives it (point-to-point on bytes, in the
// communicator's collective context), so each can be tested over an in-process transport
// under the race detector.
//
// Buffers are bytes; element types reach the reduction kernels as a Kind, and the caller
// views its typed slices as bytes (see internal/view).
package collective

// Comm is what an algorithm needs from a communicator. Ranks are the communicator's. Messages
// between a pair are never reordered; tags keep the steps of one algorithm apart.
type Comm interface {
	Rank() int
	Size() int
	Send(buf []byte, dst, tag int) error
	// Recv receives into buf from src and returns the number of bytes received.
	Recv(buf []byte, src, tag int) (int, error)
	// Sendrecv sends and receives at once, so two ranks exchanging never deadlock.
	Sendrecv(send []byte, dst, stag int, recv []byte, src, rtag int) (int, error)
}

// Tags of the algorithms' messages. Collectives on one communicator run one at a time and in
// the same order on every rank, so a tag per algorithm is enough to keep steps apart.
const (
	tagBarrier = iota + 1
	tagBcast
	tagAllreduce
	tagAllgather
	tagReduce
	tagGather
	tagScatter
	tagAlltoall
	tagScan
	tagReduceScatter
)
