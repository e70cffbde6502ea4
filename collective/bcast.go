package collective

// BcastBinomial sends buf from root to every rank along a binomial tree: in ceil(log2 n)
// steps, each rank that has the data passes it to the rank 2^k above it (counting from the
// root). Best for small messages: every step moves the whole buffer.
func BcastBinomial(c Comm, buf []byte, root int) error {
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
