package collective

import "github.com/gorun-hpc/gorun/internal/sharedcopy"

// nodeAllgatherv leaves rank i's send in recv[displs[i]:][:counts[i]] on every rank of a
// communicator that is one node (local rank = rank): in each round every rank writes the next
// piece of its block into its slot and, after the phase, every rank copies every piece out.
// Every rank knows every count, so all run the same number of rounds: the largest block's.
func nodeAllgatherv(n Node, send, recv []byte, counts, displs []int) error {
	size := n.Size()
	if err := checkBlocks("allgatherv", size, counts, displs, len(recv)); err != nil {
		return err
	}
	me := n.Rank()
	if counts[me] != len(send) {
		return bufErr("allgatherv: rank %d sends %d bytes, its count says %d", me, len(send), counts[me])
	}
	most := 0
	for _, k := range counts {
		most = max(most, k)
	}
	half := n.HalfSize()
	for off := 0; off < most; off += half {
		n.Round()
		if off < len(send) {
			sharedcopy.Copy(n.Slot(me), send[off:min(len(send), off+half)])
		}
		if err := n.Phase(); err != nil {
			return err
		}
		for i, k := range counts {
			if off < k {
				c := min(k-off, half)
				sharedcopy.Copy(recv[displs[i]+off:displs[i]+off+c], n.Slot(i)[:c])
			}
		}
	}
	return nil
}
