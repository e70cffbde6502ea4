package collective

// AllreduceRecursiveDoubling leaves in recv the reduction of every rank's send. send and recv
// may be the same slice. In each of log2(p) steps a rank exchanges its whole partial result
// with the rank whose number differs in one bit; best for small messages.
//
// A size that is not a power of two is first folded: of the first 2*rem ranks (rem = n - p, p
// the largest power of two <= n) each even rank hands its data to the odd rank above it and
// waits; the p remaining ranks run the exchange; at the end the odd ranks hand the result
// back.
//
// Every combination is made as f(lower ranks' part, higher ranks' part) and both partners of
// a step combine the same two operands, so every rank ends with the same bits, and a
// non-commutative Func sees its operands in rank order.
func AllreduceRecursiveDoubling(c Comm, send, recv []byte, r Reducer) error {
	n, me := c.Size(), c.Rank()
	if !sameSlice(send, recv) {
		copy(recv, send)
	}
	if n == 1 || len(recv) == 0 {
		return nil
	}
	tmp := make([]byte, len(recv))
	p := 1
	for p*2 <= n {
		p *= 2
	}
	rem := n - p
	newRank := me - rem
	if me < 2*rem {
		if me%2 == 0 {
			if err := c.Send(recv, me+1, tagAllreduce); err != nil {
				return err
			}
			_, err := c.Recv(recv, me+1, tagAllreduce)
			return err
		}
		if _, err := c.Recv(tmp, me-1, tagAllreduce); err != nil {
			return err
		}
		combine(r, recv, tmp, true)
		newRank = me / 2
	}
	for mask := 1; mask < p; mask <<= 1 {
		pn := newRank ^ mask
		partner := pn + rem
		if pn < rem {
			partner = 2*pn + 1
		}
		if _, err := c.Sendrecv(recv, partner, tagAllreduce, tmp, partner, tagAllreduce); err != nil {
			return err
		}
		combine(r, recv, tmp, partner < me)
	}
	if me < 2*rem {
		return c.Send(recv, me-1, tagAllreduce)
	}
	return nil
}

// combine sets mine = mine ⊕ theirs, with theirs as the left operand if it comes from lower
// ranks. A commutative op takes the operands in either order (bitwise equal), which saves a
// copy.
func combine(r Reducer, mine, theirs []byte, theirsIsLower bool) {
	if !theirsIsLower || r.Commutative {
		r.Apply(mine, theirs)
		return
	}
	r.Apply(theirs, mine)
	copy(mine, theirs)
}

// sameSlice reports whether a and b are the same memory (an in-place operation).
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
