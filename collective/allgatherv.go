package collective

// allgathervRing leaves block i (counts[i] bytes at recv[displs[i]:]) of every rank's recv
// the send of rank i: in n-1 steps each rank passes to its right neighbour the block it got in
// the previous step, in place in recv. Each block crosses each link once; an empty block is
// no message (both neighbours know its size).
func allgathervRing(c Comm, send, recv []byte, counts, displs []int) error {
	n, me := c.Size(), c.Rank()
	if err := checkAllgatherv(c, send, recv, counts, displs); err != nil {
		return err
	}
	blk := func(i int) []byte { return recv[displs[i] : displs[i]+counts[i]] }
	copy(blk(me), send)
	right, left := (me+1)%n, (me-1+n)%n
	for step := 0; step < n-1; step++ {
		out, in := (me-step+n)%n, (me-step-1+n)%n
		if err := exchange(c, blk(out), right, blk(in), left, tagAllgatherv); err != nil {
			return err
		}
	}
	return nil
}

// allgathervBruck is allgatherBruck with blocks of their own sizes: ceil(log2 n) steps for
// any n, in a scratch buffer that holds the blocks of ranks me, me+1, … packed, unpacked into
// recv at the end. What a step sends is the blocks it has, so irregular counts (zeros
// included) change the sizes of the messages, not their number.
func allgathervBruck(c Comm, send, recv []byte, counts, displs []int) error {
	n, me := c.Size(), c.Rank()
	if err := checkAllgatherv(c, send, recv, counts, displs); err != nil {
		return err
	}
	// pos[k] is where the block of rank (me+k)%n starts in tmp.
	pos := make([]int, n+1)
	for k := range n {
		pos[k+1] = pos[k] + counts[(me+k)%n]
	}
	tmp := alloc(pos[n])
	defer release(tmp)
	copy(tmp, send)
	for d := 1; d < n; d <<= 1 {
		k := min(d, n-d)
		// The peer me+d sends its first k blocks: ranks me+d … me+d+k-1, our positions d … d+k-1.
		if err := exchange(c, tmp[:pos[k]], (me-d+n)%n, tmp[pos[d]:pos[d+k]], (me+d)%n, tagAllgatherv); err != nil {
			return err
		}
	}
	for k := range n {
		i := (me + k) % n
		copy(recv[displs[i]:displs[i]+counts[i]], tmp[pos[k]:pos[k+1]])
	}
	return nil
}

func checkAllgatherv(c Comm, send, recv []byte, counts, displs []int) error {
	if err := checkBlocks("allgatherv", c.Size(), counts, displs, len(recv)); err != nil {
		return err
	}
	if counts[c.Rank()] != len(send) {
		return bufErr("allgatherv: rank %d sends %d bytes, its count says %d", c.Rank(), len(send), counts[c.Rank()])
	}
	return nil
}
