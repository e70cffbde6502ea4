package collective

// allreduceRecursiveDoubling leaves in recv the reduction of every rank's send. send and recv
// may be the same slice. In each of log2(p) steps a rank exchanges its whole partial result
// with the rank whose number differs in one bit; best for small messages (latency log2 p,
// but every step moves the whole buffer).
//
// A size that is not a power of two is first folded (see fold): of the first 2*rem ranks each
// even rank hands its data to the odd rank above it and waits; the p remaining ranks run the
// exchange; at the end the odd ranks hand the result back.
//
// Every combination is made as f(lower ranks' part, higher ranks' part) and both partners of
// a step combine the same two operands in the same order, so every rank ends with the same
// bits, and a non-commutative Func sees its operands in rank order.
func allreduceRecursiveDoubling(c Comm, send, recv []byte, r Reducer) error {
	if err := checkReduce(send, recv, r); err != nil {
		return err
	}
	return allreduceRD(c, send, recv, r, tagAllreduce)
}

// allreduceRD is allreduceRecursiveDoubling on tag, without the argument checks.
func allreduceRD(c Comm, send, recv []byte, r Reducer, tag int) error {
	f, nr, tmp, done, err := enterFold(c, send, recv, r, tag)
	if done || err != nil {
		return err
	}
	defer release(tmp)
	me := c.Rank()
	// Invariant: before the step with mask m, acc holds the reduction over the aligned group
	// of m active ranks that contains nr, which (through fold) is a run of consecutive ranks.
	// Both partners of a step compute lower ⊕ higher with the operands in the same order
	// (even for a commutative op, so that NaN payloads agree too): the lower partner into acc,
	// the higher into spare, after which the two swap roles; no copy per step.
	acc, spare := recv, tmp
	for mask := 1; mask < f.p; mask <<= 1 {
		partner := f.oldRank(nr ^ mask)
		if _, err := c.Sendrecv(acc, partner, tag, spare, partner, tag); err != nil {
			return err
		}
		if partner < me {
			r.apply(spare, acc)
			acc, spare = spare, acc
		} else {
			r.apply(acc, spare)
		}
	}
	if !sameSlice(acc, recv) {
		copy(recv, acc)
	}
	return foldOut(c, f, recv, tag)
}

// enterFold starts an allreduce over a power of two of ranks: it copies send into recv and
// runs foldIn. It returns the fold, this rank's place in it (nr) and scratch of len(recv); or
// done, when nothing is left for this rank to do: one rank, no data, or a rank folded out,
// which has then received the result from its odd partner (foldOut's send). The caller
// releases tmp.
func enterFold(c Comm, send, recv []byte, r Reducer, tag int) (f fold, nr int, tmp []byte, done bool, err error) {
	n, me := c.Size(), c.Rank()
	if !sameSlice(send, recv) {
		copy(recv, send)
	}
	if n == 1 || len(recv) == 0 {
		return f, 0, nil, true, nil
	}
	tmp = alloc(len(recv))
	f = newFold(n)
	if err := foldIn(c, f, recv, tmp, r, tag); err != nil {
		release(tmp)
		return f, 0, nil, true, err
	}
	if nr = f.newRank(me); nr < 0 {
		release(tmp)
		_, err := c.Recv(recv, me+1, tag)
		return f, nr, nil, true, err
	}
	return f, nr, tmp, false, nil
}

// foldIn runs the first step of a fold: an even rank below 2*rem sends buf to the odd rank
// above it; that odd rank receives it into tmp and combines it into buf (the even rank's part
// on the left). Other ranks do nothing.
func foldIn(c Comm, f fold, buf, tmp []byte, r Reducer, tag int) error {
	me := c.Rank()
	if me >= 2*f.rem {
		return nil
	}
	if me%2 == 0 {
		return c.Send(buf, me+1, tag)
	}
	if _, err := c.Recv(tmp[:len(buf)], me-1, tag); err != nil {
		return err
	}
	combine(r, buf, tmp, true)
	return nil
}

// foldOut hands the result from each odd rank below 2*rem back to the even rank below it
// (which waits for it with a Recv of its own).
func foldOut(c Comm, f fold, buf []byte, tag int) error {
	if me := c.Rank(); me < 2*f.rem {
		return c.Send(buf, me-1, tag)
	}
	return nil
}

// combine sets mine = mine ⊕ theirs, with theirs as the left operand if it comes from lower
// ranks. A commutative op takes the operands in either order (bitwise equal), which saves a
// copy. theirs may be overwritten.
func combine(r Reducer, mine, theirs []byte, theirsIsLower bool) {
	if !theirsIsLower || r.Commutative {
		r.apply(mine, theirs)
		return
	}
	theirs = theirs[:len(mine)]
	r.apply(theirs, mine)
	copy(mine, theirs)
}
