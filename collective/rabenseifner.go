package collective

// allreduceRabenseifner leaves in recv the reduction of every rank's send (send and recv may
// be the same slice): a reduce-scatter by recursive halving, then an allgather by recursive
// doubling. Each rank sends and receives about 2·(p-1)/p of the buffer in 2·log2(p) steps:
// bandwidth-optimal for large buffers, where recursive doubling moves the whole buffer
// log2(p) times.
//
// A size that is not a power of two is folded first (see fold), which costs the folded pairs
// one extra whole-buffer transfer each way; allreduceRing avoids that.
//
// The buffer is cut into p chunks of elements (some empty when the count is below p). In the
// halving step with mask m the lower partner keeps the lower half of its chunk range; as m
// grows from 1, the partial results a rank holds always cover an aligned run of active ranks,
// so operands are combined in rank order, and each chunk is reduced by one rank only and then
// copied: every rank gets the same bits.
func allreduceRabenseifner(c Comm, send, recv []byte, r Reducer) error {
	if err := checkReduce(send, recv, r); err != nil {
		return err
	}
	f, nr, tmp, done, err := enterFold(c, send, recv, r, tagAllreduce)
	if done || err != nil {
		return err
	}
	defer release(tmp)
	// Chunk j covers elements [j*count/p, (j+1)*count/p): balanced to one element.
	count := len(recv) / r.Size
	off := make([]int, f.p+1)
	for j := range off {
		off[j] = j * count / f.p * r.Size
	}
	lo, hi, err := halvingReduceScatter(c, f, nr, recv, tmp, off, r, tagAllreduce)
	if err != nil {
		return err
	}
	if err := doublingAllgather(c, f, nr, recv, off, lo, hi, tagAllreduce); err != nil {
		return err
	}
	return foldOut(c, f, recv, tagAllreduce)
}

// halvingReduceScatter is the reduce-scatter among the p active ranks of f: work is laid out
// as p positions, position j at work[off[j]:off[j+1]]. In the step with mask m (1, 2, 4, …)
// active rank nr and partner nr^m split their common range of positions; the lower keeps the
// lower half. Each sends the other's half, receives its own half into tmp and combines it
// (the lower rank's part on the left). It returns the position range [lo, hi) this rank then
// holds, fully reduced: one position, bitrev(nr).
//
// Invariant: before the step with mask m, work[lo:hi] holds the reduction over the aligned
// group of m active ranks that contains nr, and [lo, hi) is aligned to its width p/m.
func halvingReduceScatter(c Comm, f fold, nr int, work, tmp []byte, off []int, r Reducer, tag int) (lo, hi int, err error) {
	lo, hi = 0, f.p
	for mask := 1; mask < f.p; mask <<= 1 {
		partnerNr := nr ^ mask
		partner := f.oldRank(partnerNr)
		mid := (lo + hi) / 2
		keepLo, keepHi, sendLo, sendHi := lo, mid, mid, hi
		if nr&mask != 0 {
			keepLo, keepHi, sendLo, sendHi = mid, hi, lo, mid
		}
		keep := work[off[keepLo]:off[keepHi]]
		in := tmp[:len(keep)]
		if _, err := c.Sendrecv(work[off[sendLo]:off[sendHi]], partner, tag, in, partner, tag); err != nil {
			return 0, 0, err
		}
		combine(r, keep, in, partnerNr < nr)
		lo, hi = keepLo, keepHi
	}
	return lo, hi, nil
}

// doublingAllgather undoes halvingReduceScatter's partition: with masks p/2 … 1, active rank
// nr swaps the positions it holds, [lo, hi), for its partner's, the other half of the aligned
// range twice as wide, until every active rank holds all of work.
func doublingAllgather(c Comm, f fold, nr int, work []byte, off []int, lo, hi, tag int) error {
	for mask := f.p / 2; mask >= 1; mask >>= 1 {
		partner := f.oldRank(nr ^ mask)
		w := hi - lo
		plo := lo ^ w // the sibling range: lo is aligned to w, so flipping that bit finds it
		if _, err := c.Sendrecv(work[off[lo]:off[hi]], partner, tag, work[off[plo]:off[plo+w]], partner, tag); err != nil {
			return err
		}
		lo = min(lo, plo)
		hi = lo + 2*w
	}
	return nil
}
