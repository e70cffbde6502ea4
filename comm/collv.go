package comm

import (
	"fmt"

	"github.com/gorun-hpc/gorun/collective"
)

// The irregular collectives (each rank's block has its own count) and Exscan.
//
// Counts and displacements are in elements of T. nil displacements mean the blocks are
// packed in rank order (displs[i] = counts[0]+…+counts[i-1]); zero counts are allowed
// anywhere; the elements between blocks (gaps) are never written. Each rank checks its own
// arguments before anything is sent (ErrBuffer, ErrRank, ErrType, ErrOp).
//
// With GORUN_CHECK=1 the ranks also agree on their counts, in the same one allreduce that
// checks the other arguments (collective.Verify): a vector every rank holds (Allgatherv's
// and ReduceScatter's counts) must hash the same everywhere, and for the transfers whose ends
// know their sizes separately (Gatherv, Scatterv: a rank's own length against the root's
// counts; Alltoallv: sendCounts[j] on rank i against recvCounts[i] on rank j) each rank adds
// a hash of every (from, to, count) it sends and subtracts that of every one it receives, so
// the sum over the ranks is 0 exactly when both ends agree (a miss has a probability of about
// 2^-64). A disagreement is ErrMismatch on every rank, not a hang or truncated data.

// layoutStack is the communicator size up to which a v-collective's counts and displacements
// in bytes live in a layout on the caller's stack, so that the call allocates nothing.
const layoutStack = 16

// layout holds one vector of blocks in bytes: counts, then displacements.
type layout [2 * layoutStack]int

// vlayout checks counts and displs (nil: packed) for n blocks in a buffer of size elements
// and returns them in bytes (es bytes an element), in l when they fit.
func vlayout(l *layout, what string, n int, counts, displs []int, size, es int) (cb, db []int, err error) {
	if len(counts) != n {
		return nil, nil, fmt.Errorf("%w: %s with %d counts among %d ranks", ErrBuffer, what, len(counts), n)
	}
	if displs != nil && len(displs) != n {
		return nil, nil, fmt.Errorf("%w: %s with %d displacements among %d ranks", ErrBuffer, what, len(displs), n)
	}
	all := l[:]
	if n > layoutStack {
		all = make([]int, 2*n)
	}
	cb, db = all[:n:n], all[n:2*n]
	at := 0
	for i, k := range counts {
		d := at
		if displs != nil {
			d = displs[i]
		}
		if k < 0 || d < 0 || d > size || k > size-d {
			return nil, nil, fmt.Errorf("%w: %s block %d (%d elements at %d) outside a buffer of %d", ErrBuffer, what, i, k, d, size)
		}
		cb[i], db[i] = k*es, d*es
		at += k
	}
	return cb, db, nil
}

// vecHash is a hash of a counts vector every rank holds (Signature.Hash).
func vecHash(counts []int) int64 {
	var h int64
	for i, k := range counts {
		h += collective.BlockHash(i, -1, k)
	}
	return h
}

// Gatherv collects rank i's send (counts[i] elements) into recv[displs[i]:] at root. counts,
// displs and recv matter at the root only; displs nil means packed in rank order.
func Gatherv[T any](c *Comm, send, recv []T, counts, displs []int, root int) error {
	es := sizeOf[T]()
	s := sig[T](collective.CollGatherv, 0, root, 0)
	s.Balance = collective.BlockHash(c.rank, root, len(send))
	var l layout
	var cb, db []int
	var berr error
	if c.rank == root {
		cb, db, berr = vlayout(&l, "Gatherv", c.size, counts, displs, len(recv), es)
		if berr == nil && counts[root] != len(send) {
			berr = fmt.Errorf("%w: Gatherv: the root sends %d elements, counts[%d] is %d", ErrBuffer, len(send), root, counts[root])
		}
		if berr == nil {
			for i, k := range counts {
				s.Balance -= collective.BlockHash(i, root, k)
			}
		}
	}
	e, err := c.begin(s, firstErr(checkType[T](), c.rootErr(root), berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Gatherv(c.coll(), bytesOf(send), bytesOf(recv), cb, db, root)
}

// Scatterv hands rank i send[displs[i]:][:counts[i]] from root into its recv (len(recv) is
// this rank's count). counts, displs and send matter at the root only; displs nil means
// packed in rank order.
func Scatterv[T any](c *Comm, send []T, counts, displs []int, recv []T, root int) error {
	es := sizeOf[T]()
	s := sig[T](collective.CollScatterv, 0, root, 0)
	s.Balance = -collective.BlockHash(root, c.rank, len(recv))
	var l layout
	var cb, db []int
	var berr error
	if c.rank == root {
		cb, db, berr = vlayout(&l, "Scatterv", c.size, counts, displs, len(send), es)
		if berr == nil && counts[root] != len(recv) {
			berr = fmt.Errorf("%w: Scatterv: the root receives %d elements, counts[%d] is %d", ErrBuffer, len(recv), root, counts[root])
		}
		if berr == nil {
			for i, k := range counts {
				s.Balance += collective.BlockHash(root, i, k)
			}
		}
	}
	e, err := c.begin(s, firstErr(checkType[T](), c.rootErr(root), berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Scatterv(c.coll(), bytesOf(send), bytesOf(recv), cb, db, root)
}

// Allgatherv leaves rank i's send (counts[i] elements; counts[i] == len(send) on rank i) in
// recv[displs[i]:] on every rank. Every rank passes the same counts; displs nil means packed.
func Allgatherv[T any](c *Comm, send, recv []T, counts, displs []int) error {
	var l layout
	cb, db, berr := vlayout(&l, "Allgatherv", c.size, counts, displs, len(recv), sizeOf[T]())
	s := sig[T](collective.CollAllgatherv, 0, 0, 0)
	if berr == nil {
		s.Hash = vecHash(counts)
		if counts[c.rank] != len(send) {
			berr = fmt.Errorf("%w: Allgatherv: rank %d sends %d elements, counts[%d] is %d", ErrBuffer, c.rank, len(send), c.rank, counts[c.rank])
		}
	}
	e, err := c.begin(s, firstErr(checkType[T](), berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Allgatherv(c.coll(), bytesOf(send), bytesOf(recv), cb, db)
}

// Alltoallv sends send[sendDispls[j]:][:sendCounts[j]] to rank j and receives rank i's block
// for this rank into recv[recvDispls[i]:][:recvCounts[i]]; sendCounts[j] on rank i must equal
// recvCounts[i] on rank j. nil displacements mean packed; send and recv must not overlap.
func Alltoallv[T any](c *Comm, send []T, sendCounts, sendDispls []int, recv []T, recvCounts, recvDispls []int) error {
	es := sizeOf[T]()
	var ls, lr layout
	scb, sdb, serr := vlayout(&ls, "Alltoallv send", c.size, sendCounts, sendDispls, len(send), es)
	rcb, rdb, rerr := vlayout(&lr, "Alltoallv recv", c.size, recvCounts, recvDispls, len(recv), es)
	s := sig[T](collective.CollAlltoallv, 0, 0, 0)
	var berr error
	if serr == nil && rerr == nil {
		if sendCounts[c.rank] != recvCounts[c.rank] {
			berr = fmt.Errorf("%w: Alltoallv: rank %d sends itself %d elements and receives %d", ErrBuffer, c.rank, sendCounts[c.rank], recvCounts[c.rank])
		}
		for j := range c.size {
			s.Balance += collective.BlockHash(c.rank, j, sendCounts[j]) - collective.BlockHash(j, c.rank, recvCounts[j])
		}
	}
	e, err := c.begin(s, firstErr(checkType[T](), serr, rerr, berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Alltoallv(c.coll(), bytesOf(send), scb, sdb, bytesOf(recv), rcb, rdb)
}

// ReduceScatter reduces by op every rank's send (sum(counts) elements) and leaves block i of
// the result (counts[i] elements, starting at counts[0]+…+counts[i-1]) in rank i's recv.
// Every rank passes the same counts.
func ReduceScatter[T Number](c *Comm, send, recv []T, counts []int, op Op) error {
	r, rerr := reducer[T](op)
	s := sig[T](collective.CollReduceScatterV, 0, 0, op)
	var l layout
	cb, _, berr := vlayout(&l, "ReduceScatter", c.size, counts, nil, len(send), sizeOf[T]())
	if berr == nil {
		total := 0
		for _, k := range counts {
			total += k
		}
		s.Count, s.Hash = total, vecHash(counts)
		if total != len(send) || counts[c.rank] != len(recv) {
			berr = fmt.Errorf("%w: ReduceScatter of %d elements into %d with counts summing to %d", ErrBuffer, len(send), len(recv), total)
		}
	}
	e, err := c.begin(s, firstErr(rerr, berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.ReduceScatter(c.coll(), bytesOf(send), bytesOf(recv), cb, r)
}

// Exscan leaves in recv at rank i > 0 the elementwise reduction by op of send over ranks
// 0…i-1 (an exclusive prefix); rank 0's recv is left as it was. send and recv have the same
// length and may be the same slice.
func Exscan[T Number](c *Comm, send, recv []T, op Op) error {
	r, rerr := reducer[T](op)
	var berr error
	if len(send) != len(recv) {
		berr = fmt.Errorf("%w: Exscan of %d elements into %d", ErrBuffer, len(send), len(recv))
	}
	e, err := c.begin(sig[T](collective.CollExscan, len(send), 0, op), firstErr(rerr, berr))
	if err != nil {
		return err
	}
	defer c.end()
	return e.Exscan(c.coll(), bytesOf(send), bytesOf(recv), r)
}
