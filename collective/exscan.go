package collective

// exscanRecursiveDoubling leaves in recv at rank i > 0 the reduction of send over ranks
// 0…i-1 (an exclusive prefix); rank 0's recv is not written. send and recv may be the same
// slice. Scan's recursive doubling with a prefix that starts empty: ceil(log2 n) steps.
//
// Invariant: before the step with mask m, partial holds the reduction over the aligned group
// of m ranks that contains me, and excl (once have) over those of them below me.
func exscanRecursiveDoubling(c Comm, send, recv []byte, r Reducer) error {
	if err := checkReduce(send, recv, r); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	if n == 1 || len(recv) == 0 {
		return nil
	}
	b := len(send)
	scratch := alloc(4 * b)
	defer release(scratch)
	partial, tmp, excl, left := scratch[:b], scratch[b:2*b], scratch[2*b:3*b], scratch[3*b:]
	copy(partial, send)
	have := false
	for mask := 1; mask < n; mask <<= 1 {
		partner := me ^ mask
		if partner >= n {
			continue
		}
		if _, err := c.Sendrecv(partial, partner, tagExscan, tmp, partner, tagExscan); err != nil {
			return err
		}
		if partner > me {
			r.apply(partial, tmp)
			continue
		}
		if have {
			prepend(r, excl, tmp, left)
		} else {
			copy(excl, tmp)
			have = true
		}
		prepend(r, partial, tmp, left)
	}
	if have {
		copy(recv, excl)
	}
	return nil
}
