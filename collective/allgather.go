package collective

// AllgatherRing leaves in recv the blocks of every rank in rank order: block i (len(send)
// bytes) comes from rank i. In n-1 steps each rank passes to its right neighbour the block it
// received in the previous step, so every link carries the same load; the time is bandwidth
// optimal for large blocks.
func AllgatherRing(c Comm, send, recv []byte) error {
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
