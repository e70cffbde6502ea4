package collective

import "fmt"

// The neighbourhood collectives (MPI_Neighbor_*) move data along the edges of a process
// topology only: rank me receives block i from Sources[i] and sends block j to
// Destinations[j]. A negative rank is no neighbour (comm's ProcNull, at a non-periodic edge of
// a grid): nothing is sent to it and the block received from it is left as it was.

// Coll kinds of the neighbourhood collectives. They have one algorithm and no rows in the
// decision table, so they follow numColls; they name the operation in a Signature.
const (
	CollNeighborAllgather Coll = numColls + iota
	CollNeighborAlltoall
	CollNeighborAlltoallv
)

var neighborNames = [...]string{"neighbor_allgather", "neighbor_alltoall", "neighbor_alltoallv"}

// tagNeighbor is the first tag of the neighbourhood exchange. It must stay the last tag
// constant: a Cartesian neighbourhood uses tagNeighbor+k for the k-th neighbour (see
// Neighborhood.RecvTags), up to 2 per dimension.
const tagNeighbor = tagExscan + 1

// Neighborhood is one rank's edges in a topology.
type Neighborhood struct {
	Sources, Destinations []int
	// RecvTags[i] tells apart the messages from Sources[i] when a rank is several neighbours
	// of another in one exchange (a periodic dimension of 1 or 2 ranks): the block for
	// Destinations[j] carries SendTags[j], and the receiver takes a message with RecvTags[i]
	// into block i. nil (a graph): every message has the same tag and the blocks between one
	// pair match in order, sends in the order of Destinations, receives in that of Sources.
	RecvTags, SendTags []int
}

// NeighborAlltoallv sends send[sd[j]:][:sc[j]] to Destinations[j] and receives the block from
// Sources[i] into recv[rd[i]:][:rc[i]], all at once: every receive is posted, then every
// send, then all are waited for. Counts and displacements are in bytes; a zero count sends
// or receives nothing, and the other end, which knows its own count, does the same.
//
// Blocks sent to several destinations may be the same bytes (NeighborAllgather passes one
// block for all): sends only read them.
func NeighborAlltoallv(c Comm, nb Neighborhood, send []byte, sc, sd []int, recv []byte, rc, rd []int) error {
	in, out := len(nb.Sources), len(nb.Destinations)
	if err := nb.check(c.Size()); err != nil {
		return err
	}
	if err := checkBlocks("neighbor send", out, sc, sd, len(send)); err != nil {
		return err
	}
	if err := checkBlocks("neighbor recv", in, rc, rd, len(recv)); err != nil {
		return err
	}
	me := c.Rank()
	var selfStack [8]bool
	self := selfStack[:0] // self[i]: receive i is from this rank and was done as a copy
	if in > len(selfStack) {
		self = make([]bool, 0, in)
	}
	self = self[:in]
	clear(self)
	// A message to itself is a copy: the k-th send to this rank with a tag lands in the k-th
	// receive from it with that tag, which is what matching would pair it with.
	for j, dst := range nb.Destinations {
		if dst != me {
			continue
		}
		i := nb.selfReceive(me, self, nb.tag(nb.SendTags, j))
		if i < 0 {
			return fmt.Errorf("collective: neighbour %d sends to itself with no receive from itself to match", me)
		}
		if sc[j] > rc[i] {
			return bufErr("neighbour exchange: %d bytes to itself into a block of %d", sc[j], rc[i])
		}
		copy(recv[rd[i]:rd[i]+sc[j]], send[sd[j]:sd[j]+sc[j]])
		self[i] = true
	}
	var stack [32]Request
	reqs := stack[:0]
	if in+out > len(stack) {
		reqs = make([]Request, 0, in+out)
	}
	for i, src := range nb.Sources {
		if src < 0 || rc[i] == 0 || src == me {
			continue
		}
		q, err := c.Irecv(recv[rd[i]:rd[i]+rc[i]], src, nb.tag(nb.RecvTags, i))
		if err != nil {
			return joinWait(err, reqs)
		}
		reqs = append(reqs, q)
	}
	for j, dst := range nb.Destinations {
		if dst < 0 || sc[j] == 0 || dst == me {
			continue
		}
		q, err := c.Isend(send[sd[j]:sd[j]+sc[j]], dst, nb.tag(nb.SendTags, j))
		if err != nil {
			return joinWait(err, reqs)
		}
		reqs = append(reqs, q)
	}
	return waitAll(reqs)
}

// selfReceive returns the first receive from me with tag that taken does not mark, or -1.
func (nb Neighborhood) selfReceive(me int, taken []bool, tag int) int {
	for i, src := range nb.Sources {
		if src == me && !taken[i] && nb.tag(nb.RecvTags, i) == tag {
			return i
		}
	}
	return -1
}

// tag is the tag of the k-th message by tags (RecvTags or SendTags).
func (nb Neighborhood) tag(tags []int, k int) int {
	if tags == nil {
		return tagNeighbor
	}
	return tagNeighbor + tags[k]
}

// check reports neighbours outside a communicator of n ranks and tag lists that do not fit.
func (nb Neighborhood) check(n int) error {
	for _, list := range [2][]int{nb.Sources, nb.Destinations} {
		for _, r := range list {
			if r >= n {
				return fmt.Errorf("collective: neighbour %d not in [0, %d)", r, n)
			}
		}
	}
	if (nb.RecvTags == nil) != (nb.SendTags == nil) ||
		nb.RecvTags != nil && (len(nb.RecvTags) != len(nb.Sources) || len(nb.SendTags) != len(nb.Destinations)) {
		return fmt.Errorf("collective: neighbourhood tags (%d, %d) for %d sources and %d destinations",
			len(nb.RecvTags), len(nb.SendTags), len(nb.Sources), len(nb.Destinations))
	}
	return nil
}
