package collective

// ReduceScatterBlock: send holds n blocks of b bytes; rank i's recv (b bytes) gets the
// reduction over all ranks of their block i.

func checkReduceScatter(c Comm, send, recv []byte, r Reducer) error {
	if err := r.check(); err != nil {
		return err
	}
	if len(send) != c.Size()*len(recv) || len(recv)%r.Size != 0 {
		return bufErr("reduce-scatter of %d bytes into blocks of %d among %d ranks", len(send), len(recv), c.Size())
	}
	return nil
}

// reduceScatterBlockHalving runs the recursive-halving reduce-scatter of
// allreduceRabenseifner (log2 p steps, about n·b bytes sent per rank), with the blocks laid
// out so that each rank ends with its own: active rank q ends with position bitrev(q), so
// position j holds the blocks of the rank(s) that active rank bitrev(j) stands for. It keeps
// rank order, so any reducer works. A size that is not a power of two folds first (see fold),
// which costs the folded pairs one extra transfer of the whole n·b.
func reduceScatterBlockHalving(c Comm, send, recv []byte, r Reducer) error {
	if err := checkReduceScatter(c, send, recv, r); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	b := len(recv)
	if n == 1 || b == 0 {
		copy(recv, send)
		return nil
	}
	f := newFold(n)
	nr := f.newRank(me)
	if nr < 0 { // hand everything to the odd partner; it sends this rank's block back
		if err := c.Send(send, me+1, tagReduceScatter); err != nil {
			return err
		}
		_, err := c.Recv(recv, me+1, tagReduceScatter)
		return err
	}
	// off[j] is where position j starts in work; position j holds the blocks of the ranks
	// [firstRank(q), oldRank(q)] for q = bitrev(j), one or two of them.
	off := make([]int, f.p+1)
	for j := range f.p {
		q := bitrev(j, f.p)
		off[j+1] = off[j] + (f.oldRank(q)-f.firstRank(q)+1)*b
	}
	work, tmp := alloc(len(send)), alloc(len(send))
	defer release(work)
	defer release(tmp)
	folded := me < 2*f.rem
	if folded {
		if _, err := c.Recv(tmp, me-1, tagReduceScatter); err != nil {
			return err
		}
	}
	for j := range f.p {
		q := bitrev(j, f.p)
		blocks := send[f.firstRank(q)*b : (f.oldRank(q)+1)*b]
		pos := work[off[j]:off[j+1]]
		if folded { // the even partner's part on the left
			copy(pos, tmp[f.firstRank(q)*b:(f.oldRank(q)+1)*b])
			r.apply(pos, blocks)
		} else {
			copy(pos, blocks)
		}
	}
	lo, _, err := halvingReduceScatter(c, f, nr, work, tmp, off, r, tagReduceScatter)
	if err != nil {
		return err
	}
	mine := work[off[lo]:off[lo+1]]
	if folded { // the position holds the even partner's block, then this rank's
		if err := c.Send(mine[:b], me-1, tagReduceScatter); err != nil {
			return err
		}
		mine = mine[b:]
	}
	copy(recv, mine)
	return nil
}

// reduceScatterBlockPairwise runs n-1 exchanges: in step s each rank sends its part of block
// me+s to that rank and receives rank me-s's part of its own block. Each rank sends (n-1)·b
// bytes, each once, with no fold for sizes that are not a power of two: suited to large
// blocks. Parts arrive from ranks me-1, me-2, … round the ring, so it needs a commutative
// op; with a non-commutative reducer it runs reduceScatterBlockHalving.
func reduceScatterBlockPairwise(c Comm, send, recv []byte, r Reducer) error {
	if err := checkReduceScatter(c, send, recv, r); err != nil {
		return err
	}
	if !r.Commutative {
		return reduceScatterBlockHalving(c, send, recv, r)
	}
	n, me := c.Size(), c.Rank()
	b := len(recv)
	copy(recv, send[me*b:(me+1)*b])
	if b == 0 {
		return nil
	}
	tmp := alloc(b)
	defer release(tmp)
	for s := 1; s < n; s++ {
		dst, src := (me+s)%n, (me-s+n)%n
		if _, err := c.Sendrecv(send[dst*b:(dst+1)*b], dst, tagReduceScatter, tmp, src, tagReduceScatter); err != nil {
			return err
		}
		r.apply(recv, tmp)
	}
	return nil
}
