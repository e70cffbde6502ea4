package collective

// scanRecursiveDoubling leaves in recv at rank i the reduction of send over ranks 0…i (an
// inclusive prefix). send and recv may be the same slice. In the step with mask m each rank
// swaps with rank me^m (if it exists) the reduction over its aligned group of m ranks;
// ceil(log2 n) steps for any n.
//
// Invariant: before the step with mask m, partial holds the reduction over the ranks of the
// aligned group of m that contains me, and recv over those of them up to me. A partial from a
// lower group goes on the left of both, so operands stay in rank order.
func scanRecursiveDoubling(c Comm, send, recv []byte, r Reducer) error {
	if err := checkReduce(send, recv, r); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	if !sameSlice(send, recv) {
		copy(recv, send)
	}
	if n == 1 || len(recv) == 0 {
		return nil
	}
	k := 2 // partial and tmp; a non-commutative reducer also needs room to prepend
	if !r.Commutative {
		k = 3
	}
	scratch := alloc(k * len(recv))
	defer release(scratch)
	partial, tmp, left := scratch[:len(recv)], scratch[len(recv):2*len(recv)], scratch[2*len(recv):]
	copy(partial, recv)
	for mask := 1; mask < n; mask <<= 1 {
		partner := me ^ mask
		if partner >= n {
			continue
		}
		if _, err := c.Sendrecv(partial, partner, tagScan, tmp, partner, tagScan); err != nil {
			return err
		}
		if partner > me {
			r.apply(partial, tmp)
			continue
		}
		prepend(r, recv, tmp, left)
		prepend(r, partial, tmp, left)
	}
	return nil
}

// prepend sets mine = lower ⊕ mine, leaving lower intact (scratch is as long as mine).
func prepend(r Reducer, mine, lower, scratch []byte) {
	if r.Commutative {
		r.apply(mine, lower)
		return
	}
	copy(scratch, lower)
	r.apply(scratch, mine)
	copy(mine, scratch)
}
