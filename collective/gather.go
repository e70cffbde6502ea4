package collective

// Gather and scatter move one block of b bytes per rank between the root and every rank:
// block i of the root's buffer (n·b bytes) belongs to rank i. The root's buffer is not used
// on other ranks (it may be nil there).

// checkRooted validates a gather's or scatter's buffers: the root's holds n blocks of b.
func checkRooted(c Comm, b int, all []byte, root int) error {
	if err := checkRoot(c, root); err != nil {
		return err
	}
	if c.Rank() == root && len(all) != c.Size()*b {
		return bufErr("root buffer of %d bytes for %d blocks of %d", len(all), c.Size(), b)
	}
	return nil
}

// subtree returns how many relative ranks the binomial subtree of relative rank vr covers
// (vr itself and its descendants): up to its lowest set bit, cut at n.
func subtree(vr, n int) int {
	if vr == 0 {
		return n
	}
	return min(vr&-vr, n-vr)
}

// gatherBinomial collects every rank's send (b bytes) into recv at root (n·b bytes) along a
// binomial tree: ceil(log2 n) steps, each rank forwarding the blocks of its whole subtree in
// one message. Best for small blocks; large ones are forwarded up to log2(n) times.
func gatherBinomial(c Comm, send, recv []byte, root int) error {
	b := len(send)
	if err := checkRooted(c, b, recv, root); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	vr := (me - root + n) % n
	sub := subtree(vr, n)
	// buf holds the blocks of relative ranks [vr, vr+sub) in relative order. At a root 0 that
	// is recv itself; a leaf sends send itself.
	var buf, scratch []byte
	switch {
	case vr == 0 && root == 0:
		buf = recv
	case sub > 1 || vr == 0:
		scratch = alloc(sub * b)
		buf = scratch
	default:
		buf = send
	}
	defer release(scratch)
	if !sameSlice(buf[:b], send) {
		copy(buf, send)
	}
	for mask := 1; mask < sub; mask <<= 1 {
		child := vr + mask
		cs := subtree(child, n)
		if _, err := c.Recv(buf[mask*b:(mask+cs)*b], (child+root)%n, tagGather); err != nil {
			return err
		}
	}
	if vr != 0 {
		return c.Send(buf[:sub*b], (vr-(vr&-vr)+root)%n, tagGather)
	}
	if root != 0 { // relative block j is rank j+root's
		copy(recv[root*b:], buf[:(n-root)*b])
		copy(recv, buf[(n-root)*b:])
	}
	return nil
}

// gatherLinear collects every rank's send into recv at root with one message per rank, all
// receives posted at once: each block crosses one link once, so it suits large blocks, but
// the root takes n-1 messages in turn.
func gatherLinear(c Comm, send, recv []byte, root int) error {
	b := len(send)
	if err := checkRooted(c, b, recv, root); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	if me != root {
		return c.Send(send, root, tagGather)
	}
	copy(recv[me*b:(me+1)*b], send)
	reqs := make([]Request, 0, n-1)
	for i := 1; i < n; i++ {
		src := (me + i) % n
		q, err := c.Irecv(recv[src*b:(src+1)*b], src, tagGather)
		if err != nil {
			return joinWait(err, reqs)
		}
		reqs = append(reqs, q)
	}
	return waitAll(reqs)
}

// scatterBinomial hands block i of send at root (n·b bytes) to rank i's recv (b bytes) along
// a binomial tree: each rank receives the blocks of its whole subtree from its parent, keeps
// its own and passes the rest down, the farthest subtree first.
func scatterBinomial(c Comm, send, recv []byte, root int) error {
	b := len(recv)
	if err := checkRooted(c, b, send, root); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	vr := (me - root + n) % n
	sub := subtree(vr, n)
	// buf holds the blocks of relative ranks [vr, vr+sub) in relative order.
	var buf, scratch []byte
	switch {
	case vr == 0 && root == 0:
		buf = send
	case vr == 0: // relative block j is rank j+root's
		scratch = alloc(n * b)
		buf = scratch
		copy(buf, send[root*b:])
		copy(buf[(n-root)*b:], send[:root*b])
	case sub == 1:
		buf = recv
	default:
		scratch = alloc(sub * b)
		buf = scratch
	}
	defer release(scratch)
	if vr != 0 {
		if _, err := c.Recv(buf[:sub*b], (vr-(vr&-vr)+root)%n, tagScatter); err != nil {
			return err
		}
	}
	mask := 1
	for mask < sub {
		mask <<= 1
	}
	for mask >>= 1; mask > 0; mask >>= 1 {
		if mask < sub {
			child := vr + mask
			cs := subtree(child, n)
			if err := c.Send(buf[mask*b:(mask+cs)*b], (child+root)%n, tagScatter); err != nil {
				return err
			}
		}
	}
	if !sameSlice(buf[:b], recv) {
		copy(recv, buf[:b])
	}
	return nil
}

// scatterLinear hands block i of send at root to rank i with one message per rank, all sends
// in flight at once: each block crosses one link once.
func scatterLinear(c Comm, send, recv []byte, root int) error {
	b := len(recv)
	if err := checkRooted(c, b, send, root); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	if me != root {
		_, err := c.Recv(recv, root, tagScatter)
		return err
	}
	reqs := make([]Request, 0, n-1)
	for i := 1; i < n; i++ {
		dst := (me + i) % n
		q, err := c.Isend(send[dst*b:(dst+1)*b], dst, tagScatter)
		if err != nil {
			return joinWait(err, reqs)
		}
		reqs = append(reqs, q)
	}
	copy(recv, send[me*b:(me+1)*b])
	return waitAll(reqs)
}
