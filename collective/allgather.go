package collective

// checkAllgather validates an allgather's buffers: recv holds n blocks of len(send).
func checkAllgather(c Comm, send, recv []byte) error {
	if len(recv) != c.Size()*len(send) {
		return bufErr("allgather of %d-byte blocks from %d ranks into %d bytes", len(send), c.Size(), len(recv))
	}
	return nil
}

// AllgatherRing leaves in recv the blocks of every rank in rank order: block i (len(send)
// bytes) comes from rank i. In n-1 steps each rank passes to its right neighbour the block it
// received in the previous step, so every link carries the same load; the time is bandwidth
// optimal for large blocks.
func AllgatherRing(c Comm, send, recv []byte) error {
	if err := checkAllgather(c, send, recv); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	b := len(send)
	copy(recv[me*b:(me+1)*b], send)
	right, left := (me+1)%n, (me-1+n)%n
	for step := 0; step < n-1; step++ {
		out := (me - step + n) % n
		in := (me - step - 1 + n) % n
		if _, err := c.Sendrecv(recv[out*b:(out+1)*b], right, tagAllgather, recv[in*b:(in+1)*b], left, tagAllgather); err != nil {
			return err
		}
	}
	return nil
}

// allgatherBruck leaves in recv the blocks of every rank in rank order in ceil(log2 n) steps,
// for any n: in the step at distance d each rank sends the min(d, n-d) blocks it has to rank
// me-d and receives as many from rank me+d. Latency-optimal for small blocks; one local
// rotation at the end puts the blocks in rank order.
func allgatherBruck(c Comm, send, recv []byte) error {
	if err := checkAllgather(c, send, recv); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	b := len(send)
	if n == 1 {
		copy(recv, send)
		return nil
	}
	// Invariant: before the step at distance d, tmp[i] (i < d) holds the block of rank me+i.
	tmp := alloc(n * b)
	defer release(tmp)
	copy(tmp, send)
	for d := 1; d < n; d <<= 1 {
		k := min(d, n-d)
		if _, err := c.Sendrecv(tmp[:k*b], (me-d+n)%n, tagAllgather, tmp[d*b:(d+k)*b], (me+d)%n, tagAllgather); err != nil {
			return err
		}
	}
	// tmp[i] is rank (me+i)%n's block.
	copy(recv[me*b:], tmp[:(n-me)*b])
	copy(recv, tmp[(n-me)*b:])
	return nil
}
