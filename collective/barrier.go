package collective

// barrier returns once every rank of c has entered it. Dissemination algorithm: in round k
// each rank signals rank+2^k and hears from rank-2^k; after ceil(log2 n) rounds every rank has
// heard, directly or through others, from all. It needs no power-of-two size and no root.
func barrier(c Comm) error {
	n, me := c.Size(), c.Rank()
	for dist := 1; dist < n; dist *= 2 {
		if _, err := c.Sendrecv(nil, (me+dist)%n, tagBarrier, nil, (me-dist+n)%n, tagBarrier); err != nil {
			return err
		}
	}
	return nil
}
