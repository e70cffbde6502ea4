package collective

// ReduceScatter with counts: send holds sum(counts) bytes on every rank; rank i's recv
// (counts[i] bytes) gets the reduction over all ranks of their block i, block i starting at
// the sum of the counts before it.

// checkReduceScatterV checks a reduce-scatter's buffers against counts and returns where this
// rank's block starts in send.
func checkReduceScatterV(c Comm, send, recv []byte, counts []int, r Reducer) (int, error) {
	if err := r.check(); err != nil {
		return 0, err
	}
	n, me := c.Size(), c.Rank()
	if len(counts) != n {
		return 0, bufErr("reduce-scatter: %d counts for %d ranks", len(counts), n)
	}
	total, mine := 0, 0
	for i, k := range counts {
		if k < 0 || k%r.Size != 0 {
			return 0, bufErr("reduce-scatter: count %d of %d bytes", i, k)
		}
		if i == me {
			mine = total
		}
		total += k
	}
	if len(send) != total || len(recv) != counts[me] {
		return 0, bufErr("reduce-scatter of %d bytes into %d with counts summing to %d", len(send), len(recv), total)
	}
	return mine, nil
}

// blockStarts returns where each block of counts starts, and last the total.
func blockStarts(counts []int) []int {
	off := make([]int, len(counts)+1)
	for i, k := range counts {
		off[i+1] = off[i] + k
	}
	return off
}

// reduceScatterVHalving is reduceScatterBlockHalving with blocks of their own sizes: the
// positions of halvingReduceScatter are laid out by the blocks' sizes, so each step still
// halves the ranks, not the bytes. log2 p steps, any reducer (rank order is kept); a size that
// is not a power of two folds first.
func reduceScatterVHalving(c Comm, send, recv []byte, counts []int, r Reducer) error {
	if _, err := checkReduceScatterV(c, send, recv, counts, r); err != nil {
		return err
	}
	blk := blockStarts(counts)
	n, me := c.Size(), c.Rank()
	if n == 1 {
		copy(recv, send)
		return nil
	}
	if blk[n] == 0 {
		return nil
	}
	f := newFold(n)
	nr := f.newRank(me)
	if nr < 0 { // hand everything to the odd partner; it sends this rank's block back
		if err := c.Send(send, me+1, tagReduceScatterV); err != nil {
			return err
		}
		if len(recv) == 0 {
			return nil
		}
		_, err := c.Recv(recv, me+1, tagReduceScatterV)
		return err
	}
	off := make([]int, f.p+1)
	for j := range f.p {
		q := bitrev(j, f.p)
		off[j+1] = off[j] + blk[f.oldRank(q)+1] - blk[f.firstRank(q)]
	}
	work, tmp := alloc(len(send)), alloc(len(send))
	defer release(work)
	defer release(tmp)
	folded := me < 2*f.rem
	if folded {
		if _, err := c.Recv(tmp, me-1, tagReduceScatterV); err != nil {
			return err
		}
	}
	for j := range f.p {
		q := bitrev(j, f.p)
		lo, hi := blk[f.firstRank(q)], blk[f.oldRank(q)+1]
		pos := work[off[j]:off[j+1]]
		if folded { // the even partner's part on the left
			copy(pos, tmp[lo:hi])
			r.apply(pos, send[lo:hi])
		} else {
			copy(pos, send[lo:hi])
		}
	}
	lo, _, err := halvingReduceScatter(c, f, nr, work, tmp, off, r, tagReduceScatterV)
	if err != nil {
		return err
	}
	mine := work[off[lo]:off[lo+1]]
	if folded { // the position holds the even partner's block, then this rank's
		if k := counts[me-1]; k > 0 {
			if err := c.Send(mine[:k], me-1, tagReduceScatterV); err != nil {
				return err
			}
		}
		mine = mine[counts[me-1]:]
	}
	copy(recv, mine)
	return nil
}

// reduceScatterVPairwise is reduceScatterBlockPairwise with blocks of their own sizes: n-1
// exchanges, each rank sending every block but its own once, no fold. Parts arrive round the
// ring, so a non-commutative reducer runs reduceScatterVHalving instead.
func reduceScatterVPairwise(c Comm, send, recv []byte, counts []int, r Reducer) error {
	if _, err := checkReduceScatterV(c, send, recv, counts, r); err != nil {
		return err
	}
	if !r.Commutative {
		return reduceScatterVHalving(c, send, recv, counts, r)
	}
	blk := blockStarts(counts)
	n, me := c.Size(), c.Rank()
	copy(recv, send[blk[me]:blk[me+1]])
	tmp := alloc(len(recv))
	defer release(tmp)
	for s := 1; s < n; s++ {
		dst, src := (me+s)%n, (me-s+n)%n
		if err := exchange(c, send[blk[dst]:blk[dst+1]], dst, tmp, src, tagReduceScatterV); err != nil {
			return err
		}
		if len(tmp) > 0 {
			r.apply(recv, tmp)
		}
	}
	return nil
}
