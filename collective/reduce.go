package collective

// reduceBinomial leaves in recv at root the reduction of every rank's send; recv is not used
// on other ranks (it may be nil there). At the root send and recv may be the same slice.
// Binomial tree: in ceil(log2 n) steps each rank receives the partial results of its
// subtrees, the nearest first, and passes its own up.
//
// A commutative op runs on the tree rooted at root. A non-commutative one runs on the tree
// rooted at rank 0, whose subtrees are runs of consecutive ranks, so operands meet in rank
// order; rank 0 then sends the result to root (one more step when root ≠ 0).
func reduceBinomial(c Comm, send, recv []byte, r Reducer, root int) error {
	if err := checkRoot(c, root); err != nil {
		return err
	}
	n, me := c.Size(), c.Rank()
	if me == root {
		if err := checkReduce(send, recv, r); err != nil {
			return err
		}
	} else if err := checkReduce(send, send, r); err != nil {
		return err
	}
	if n == 1 {
		if !sameSlice(send, recv) {
			copy(recv, send)
		}
		return nil
	}
	treeRoot := root
	if !r.Commutative {
		treeRoot = 0
	}
	vr := (me - treeRoot + n) % n
	// Invariant: after the step with mask m, acc holds the reduction over relative ranks
	// [vr, vr+m) (those that exist). A leaf sends send itself.
	acc := send
	var tmp []byte
	mask := 1
	for ; mask < n && vr&mask == 0; mask <<= 1 {
		child := vr + mask
		if child >= n {
			continue
		}
		if tmp == nil { // once: the first child
			tmp = alloc(len(send))
			defer release(tmp)
			if me == root && treeRoot == root {
				acc = recv
			} else {
				acc = alloc(len(send))
				defer release(acc)
			}
			if !sameSlice(send, acc) {
				copy(acc, send)
			}
		}
		if _, err := c.Recv(tmp, (child+treeRoot)%n, tagReduce); err != nil {
			return err
		}
		combine(r, acc, tmp, false)
	}
	if vr != 0 {
		if err := c.Send(acc, (vr-mask+treeRoot)%n, tagReduce); err != nil {
			return err
		}
	} else if treeRoot != root {
		return c.Send(acc, root, tagReduce)
	}
	if me == root && treeRoot != root {
		_, err := c.Recv(recv, treeRoot, tagReduce)
		return err
	}
	return nil
}
