package collective

// Alltoall: block j of send (b bytes) goes to rank j, and block i of recv comes from rank i.
// send and recv are both n·b bytes and must not overlap.

// alltoallWindow bounds the exchanges alltoallLinear keeps in flight: enough to keep every
// link busy, few enough not to flood a receiver with unexpected messages.
const alltoallWindow = 32

func checkAlltoall(c Comm, send, recv []byte) error {
	n := c.Size()
	if len(send) != len(recv) || len(send)%n != 0 {
		return bufErr("alltoall of %d bytes into %d among %d ranks", len(send), len(recv), n)
	}
	return nil
}

// alltoallPairwise runs n-1 exchanges: in step s each rank sends to me+s and receives from
// me-s, so each step is a permutation and no rank is hit by two senders at once. Suited to
// large blocks.
func alltoallPairwise(c Comm, send, recv []byte) error {
	if err := checkAlltoall(c, send, recv); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	b := len(send) / n
	copy(recv[me*b:(me+1)*b], send[me*b:(me+1)*b])
	for s := 1; s < n; s++ {
		dst, src := (me+s)%n, (me-s+n)%n
		if _, err := c.Sendrecv(send[dst*b:(dst+1)*b], dst, tagAlltoall, recv[src*b:(src+1)*b], src, tagAlltoall); err != nil {
			return err
		}
	}
	return nil
}

// alltoallLinear posts the receives and sends of up to alltoallWindow steps of the pairwise
// order at once and waits for them together: the steps overlap, which suits medium blocks
// whose single transfers do not fill a link.
func alltoallLinear(c Comm, send, recv []byte) error {
	if err := checkAlltoall(c, send, recv); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	b := len(send) / n
	copy(recv[me*b:(me+1)*b], send[me*b:(me+1)*b])
	reqs := make([]Request, 0, 2*min(alltoallWindow, n))
	for base := 1; base < n; base += alltoallWindow {
		end := min(base+alltoallWindow, n)
		for s := base; s < end; s++ {
			src := (me - s + n) % n
			q, err := c.Irecv(recv[src*b:(src+1)*b], src, tagAlltoall)
			if err != nil {
				return joinWait(err, reqs)
			}
			reqs = append(reqs, q)
		}
		for s := base; s < end; s++ {
			dst := (me + s) % n
			q, err := c.Isend(send[dst*b:(dst+1)*b], dst, tagAlltoall)
			if err != nil {
				return joinWait(err, reqs)
			}
			reqs = append(reqs, q)
		}
		if err := waitAll(reqs); err != nil {
			return err
		}
		reqs = reqs[:0]
	}
	return nil
}

// alltoallBruck needs only ceil(log2 n) steps, for any n, at the price of sending each block
// up to log2(n) times: best for small blocks on many ranks. Position i of a working copy
// starts with the block for rank me+i; in the step at distance d every position with bit d
// set moves to rank me+d (packed into one message), so after all steps position i holds
// the block from rank me-i.
func alltoallBruck(c Comm, send, recv []byte) error {
	if err := checkAlltoall(c, send, recv); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	b := len(send) / n
	half := (n/2 + 1) * b // the most blocks that have one bit set, among 0..n-1
	scratch := alloc(len(send) + 2*half)
	defer release(scratch)
	tmp, out, in := scratch[:len(send)], scratch[len(send):len(send)+half], scratch[len(send)+half:]
	copy(tmp, send[me*b:]) // tmp[i] = send block (me+i)%n
	copy(tmp[(n-me)*b:], send[:me*b])
	for d := 1; d < n; d <<= 1 {
		k := 0
		for i := d; i < n; i++ {
			if i&d != 0 {
				copy(out[k*b:(k+1)*b], tmp[i*b:(i+1)*b])
				k++
			}
		}
		if _, err := c.Sendrecv(out[:k*b], (me+d)%n, tagAlltoall, in[:k*b], (me-d+n)%n, tagAlltoall); err != nil {
			return err
		}
		k = 0
		for i := d; i < n; i++ {
			if i&d != 0 {
				copy(tmp[i*b:(i+1)*b], in[k*b:(k+1)*b])
				k++
			}
		}
	}
	for i := range n { // tmp[i] came from rank me-i
		src := (me - i + n) % n
		copy(recv[src*b:(src+1)*b], tmp[i*b:(i+1)*b])
	}
	return nil
}
