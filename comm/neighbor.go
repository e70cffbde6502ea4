package comm

import (
	"fmt"

	"github.com/gorun-hpc/gorun/collective"
)

// The neighbourhood collectives move data along a topology's edges only (MPI_Neighbor_*):
// block i of recv comes from sources[i], block j of send goes to destinations[j], in the
// order Neighbors gives (per grid dimension, the -1 then the +1 neighbour). A ProcNull
// neighbour (past a non-periodic grid edge) sends nothing and receives nothing: its block of
// recv is left as it was. Collective over the topology's communicator.
//
// With GORUN_CHECK=1 the ranks also agree that every edge's two ends expect the same number
// of bytes (the balance hashes of Alltoallv; see collv.go), which is what the exchange needs:
// a rank without neighbours may pass empty buffers whatever the others' counts.

// NeighborAllgather sends send to every destination and leaves in block i of recv
// (len(sources)*len(send) elements) what sources[i] sent.
func NeighborAllgather[T any](t Topology, send, recv []T) error {
	c, nb := t.neighborhood()
	es, k := sizeOf[T](), len(send)
	var ls, lr layout
	sc, sd := uniformBlocks(&ls, len(nb.Destinations), k*es, 0)
	rc, rd := uniformBlocks(&lr, len(nb.Sources), k*es, k*es)
	var berr error
	if len(recv) != len(nb.Sources)*k {
		berr = fmt.Errorf("%w: NeighborAllgather of %d elements from %d sources into %d", ErrBuffer, k, len(nb.Sources), len(recv))
	}
	return neighborExchange(c, nb, sig[T](collective.CollNeighborAllgather, 0, 0, 0), firstErr(checkType[T](), berr),
		bytesOf(send), sc, sd, bytesOf(recv), rc, rd)
}

// NeighborAlltoall sends block j of send to destinations[j] and leaves in block i of recv
// what sources[i] sent this rank; all blocks have one length, len(send)/len(destinations) =
// len(recv)/len(sources) elements.
func NeighborAlltoall[T any](t Topology, send, recv []T) error {
	c, nb := t.neighborhood()
	in, out := len(nb.Sources), len(nb.Destinations)
	es := sizeOf[T]()
	k, berr := 0, error(nil)
	switch {
	case in == 0 && out == 0:
		if len(send)+len(recv) != 0 {
			berr = fmt.Errorf("%w: NeighborAlltoall of %d and %d elements without neighbours", ErrBuffer, len(send), len(recv))
		}
	case in == 0 || out == 0:
		k = (len(send) + len(recv)) / max(in, out)
	default:
		k = len(send) / out
	}
	if berr == nil && (len(send) != out*k || len(recv) != in*k) {
		berr = fmt.Errorf("%w: NeighborAlltoall of %d elements to %d destinations into %d from %d sources (blocks must have one length)",
			ErrBuffer, len(send), out, len(recv), in)
	}
	var ls, lr layout
	sc, sd := uniformBlocks(&ls, out, k*es, k*es)
	rc, rd := uniformBlocks(&lr, in, k*es, k*es)
	return neighborExchange(c, nb, sig[T](collective.CollNeighborAlltoall, 0, 0, 0), firstErr(checkType[T](), berr),
		bytesOf(send), sc, sd, bytesOf(recv), rc, rd)
}

// NeighborAlltoallv sends send[sendDispls[j]:][:sendCounts[j]] to destinations[j] and
// receives the block from sources[i] into recv[recvDispls[i]:][:recvCounts[i]]. Counts and
// displacements are in elements; nil displacements mean packed blocks; each edge's sender and
// receiver must pass the same count for it.
func NeighborAlltoallv[T any](t Topology, send []T, sendCounts, sendDispls []int, recv []T, recvCounts, recvDispls []int) error {
	c, nb := t.neighborhood()
	es := sizeOf[T]()
	var ls, lr layout
	sc, sd, serr := vlayout(&ls, "NeighborAlltoallv send", len(nb.Destinations), sendCounts, sendDispls, len(send), es)
	rc, rd, rerr := vlayout(&lr, "NeighborAlltoallv recv", len(nb.Sources), recvCounts, recvDispls, len(recv), es)
	s := sig[T](collective.CollNeighborAlltoallv, 0, 0, 0)
	return neighborExchange(c, nb, s, firstErr(checkType[T](), serr, rerr), bytesOf(send), sc, sd, bytesOf(recv), rc, rd)
}

// neighborExchange runs one neighbourhood collective on c whose blocks are laid out in bytes
// (sc, sd, rc, rd are nil where local is an error). s gets the balance of the edges' sizes.
func neighborExchange(c *Comm, nb *collective.Neighborhood, s collective.Signature, local error,
	send []byte, sc, sd []int, recv []byte, rc, rd []int) error {
	if local == nil && c != nil {
		for j, dst := range nb.Destinations {
			if dst >= 0 {
				s.Balance += collective.BlockHash(c.rank, dst, sc[j])
			}
		}
		for i, src := range nb.Sources {
			if src >= 0 {
				s.Balance -= collective.BlockHash(src, c.rank, rc[i])
			}
		}
	}
	if _, err := c.begin(s, local); err != nil {
		return err
	}
	defer c.end()
	return collective.NeighborAlltoallv(c.coll(), *nb, send, sc, sd, recv, rc, rd)
}

// uniformBlocks lays out n blocks of size bytes, block i at i*stride, in l when they fit.
func uniformBlocks(l *layout, n, size, stride int) (counts, displs []int) {
	all := l[:]
	if n > layoutStack {
		all = make([]int, 2*n)
	}
	counts, displs = all[:n:n], all[n:2*n]
	for i := range n {
		counts[i], displs[i] = size, i*stride
	}
	return counts, displs
}
