package collective

// allreduceRing leaves in recv the reduction of every rank's send (send and recv may be the
// same slice): a ring reduce-scatter, then a ring allgather, each n-1 steps in which every
// rank sends one chunk (1/n of the buffer) to its right neighbour and receives one from its
// left. Every link carries the same load and no rank sits out, whatever n: bandwidth-optimal
// for large buffers, at a latency of 2(n-1) steps.
//
// Chunk j is reduced along the ring from rank j+1 round to rank j, then copied to all, so
// every rank gets the same bits. That path wraps from rank n-1 to rank 0, so it cannot keep
// rank order: for a non-commutative reducer allreduceRing runs allreduceRabenseifner, which
// has the same bandwidth term and keeps rank order.
func allreduceRing(c Comm, send, recv []byte, r Reducer) error {
	if err := checkReduce(send, recv, r); err != nil {
		return err
	}
	if !r.Commutative {
		return allreduceRabenseifner(c, send, recv, r)
	}
	n, me := c.Size(), c.Rank()
	if !sameSlice(send, recv) {
		copy(recv, send)
	}
	if n == 1 || len(recv) == 0 {
		return nil
	}
	count := len(recv) / r.Size
	chunk := func(j int) []byte {
		j = (j%n + n) % n
		return recv[j*count/n*r.Size : (j+1)*count/n*r.Size]
	}
	tmp := alloc((count/n + 1) * r.Size)
	defer release(tmp)
	right, left := (me+1)%n, (me-1+n)%n
	// Reduce-scatter. Invariant: after step s, chunk me-s-1 holds the reduction over ranks
	// me-s-1 … me (round the ring); after n-1 steps chunk me+1 is complete.
	for s := 0; s < n-1; s++ {
		out, in := chunk(me-s), chunk(me-s-1)
		if _, err := c.Sendrecv(out, right, tagAllreduce, tmp[:len(in)], left, tagAllreduce); err != nil {
			return err
		}
		r.apply(in, tmp)
	}
	// Allgather: pass complete chunks on; in step s, chunk me+1-s goes right and chunk me-s
	// arrives from the left.
	for s := 0; s < n-1; s++ {
		if _, err := c.Sendrecv(chunk(me+1-s), right, tagAllgather, chunk(me-s), left, tagAllgather); err != nil {
			return err
		}
	}
	return nil
}
