package collective

// bcastBinomial sends buf from root to every rank along a binomial tree: in ceil(log2 n)
// steps, each rank that has the data passes it to the rank 2^k above it (counting from the
// root). Best for small messages: every step moves the whole buffer.
func bcastBinomial(c Comm, buf []byte, root int) error {
	if err := checkRoot(c, root); err != nil {
		return err
	}
	n := c.Size()
	if n == 1 {
		return nil
	}
	vr := (c.Rank() - root + n) % n // rank relative to the root
	mask := 1
	for ; mask < n; mask <<= 1 {
		if vr&mask != 0 {
			if _, err := c.Recv(buf, (vr-mask+root)%n, tagBcast); err != nil {
				return err
			}
			break
		}
	}
	for mask >>= 1; mask > 0; mask >>= 1 {
		if vr+mask < n {
			if err := c.Send(buf, (vr+mask+root)%n, tagBcast); err != nil {
				return err
			}
		}
	}
	return nil
}

// bcastScatterAllgather is van de Geijn's broadcast for large messages: the root scatters
// buf in n blocks along a binomial tree (relative rank v gets block v), then a ring allgather
// gives every rank every block. The root sends about 2·(n-1)/n of the buffer instead of
// log2(n) times all of it, at the price of about log2(n) + n - 1 steps.
//
// Blocks are ceil(len/n) bytes, the last ones shorter or empty, so any length works.
func bcastScatterAllgather(c Comm, buf []byte, root int) error {
	if err := checkRoot(c, root); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	if n == 1 || len(buf) == 0 {
		return nil
	}
	bs := (len(buf) + n - 1) / n
	// blocks returns blocks [from, to) of buf (relative ranks' blocks are in relative order).
	blocks := func(from, to int) []byte {
		return buf[min(from*bs, len(buf)):min(to*bs, len(buf))]
	}
	vr := (me - root + n) % n
	// Scatter. Invariant: a rank whose lowest set bit is m (the root: m ≥ n) is responsible
	// for relative ranks [vr, vr+m), and holds their blocks once its parent sent them.
	mask := 1
	for ; mask < n; mask <<= 1 {
		if vr&mask != 0 {
			if _, err := c.Recv(blocks(vr, min(vr+mask, n)), (vr-mask+root)%n, tagBcast); err != nil {
				return err
			}
			break
		}
	}
	for mask >>= 1; mask > 0; mask >>= 1 {
		if vr+mask < n {
			if err := c.Send(blocks(vr+mask, min(vr+2*mask, n)), (vr+mask+root)%n, tagBcast); err != nil {
				return err
			}
		}
	}
	// Ring allgather over relative ranks: in step s, block vr-s goes right and block vr-s-1
	// arrives from the left.
	right, left := (me+1)%n, (me-1+n)%n
	for s := 0; s < n-1; s++ {
		out, in := (vr-s+n)%n, (vr-s-1+n)%n
		if _, err := c.Sendrecv(blocks(out, out+1), right, tagBcastRing, blocks(in, in+1), left, tagBcastRing); err != nil {
			return err
		}
	}
	return nil
}
