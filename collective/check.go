package collective

import (
	"errors"
	"fmt"

	"github.com/gorun-hpc/gorun/internal/view"
)

// ErrMismatch reports a collective whose ranks disagree: a different operation, count, root,
// op or element size on some rank, or arguments that another rank rejected.
var ErrMismatch = errors.New("collective arguments differ between ranks")

// Signature is what every rank of a collective call must agree on.
type Signature struct {
	Coll  Coll
	Count int // elements per rank, as the operation counts them (Gather: len(send), …)
	Root  int // 0 for operations without a root
	Op    Op  // 0 (no op) for operations without one, and for user functions
	Elem  int // element size in bytes
	// Hash must be the same on every rank: the irregular collectives put there a hash of a
	// counts vector that every rank holds (Allgatherv, ReduceScatter), 0 elsewhere.
	Hash int64
	// Balance is summed over the ranks (wrapping) and the sum must be 0: each rank adds
	// BlockHash of every block it sends and subtracts that of every block it expects to
	// receive (or that its counts say another rank will send), so the counts of the two ends
	// of every transfer agree, with a probability of a miss of about 2^-64 for a
	// disagreement, without anyone holding the other ranks' counts. 0 elsewhere.
	Balance int64
}

// BlockHash is a 64-bit hash of one transfer of count elements from rank src to rank dst
// (dst -1 for a block that goes to every rank), for Signature.Hash and Signature.Balance.
func BlockHash(src, dst, count int) int64 {
	x := uint64(src)<<40 ^ uint64(dst+1)<<20 ^ uint64(count)*0x9e3779b97f4a7c15
	x ^= uint64(count) >> 29
	// splitmix64's finalizer
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return int64(x ^ x>>31)
}

// sigFields is the number of values Verify agrees on: the Signature's Coll, Count, Root, Op,
// Elem and Hash, and a flag for "this rank's own checks failed". Balance is summed apart.
const sigFields = 7

// Verify makes every rank of c agree that they are running the same collective with the same
// arguments, before any of its data moves. local is this rank's own verdict on its arguments
// (nil if they are fine). Every rank returns an error if any rank passed a different
// signature (ErrMismatch) or had a local error (that error on that rank, ErrMismatch on the
// others), so a bad call fails everywhere instead of hanging or delivering wrong data.
//
// Cost: one allreduce of 15 int64 values (min over each field and its negation, which yields
// the min and the max, and the sum of the Balances) by recursive doubling: ceil(log2 n) small exchanges, two more when n is
// not a power of two, per collective call. That is why it runs only when asked for
// (GORUN_CHECK=1); it is off by default.
func Verify(c Comm, sig Signature, local error) error {
	bad := 0
	if local != nil {
		bad = 1
	}
	v := [sigFields]int64{int64(sig.Coll), int64(sig.Count), int64(sig.Root), int64(sig.Op), int64(sig.Elem), sig.Hash, int64(bad)}
	var in, out [2*sigFields + 1]int64
	for i, x := range v {
		in[i], in[sigFields+i] = x, -x
	}
	in[2*sigFields] = sig.Balance
	if err := allreduceRD(c, view.Bytes(in[:]), view.Bytes(out[:]), verifyReducer, tagCheck); err != nil {
		return fmt.Errorf("%v: argument check: %w", sig.Coll, err)
	}
	if local != nil {
		return local
	}
	var lo, hi [sigFields]int64
	for i := range sigFields {
		lo[i], hi[i] = out[i], -out[sigFields+i]
	}
	names := [sigFields - 1]string{"operation", "count", "root", "op", "element size", "counts"}
	for i, name := range names {
		if lo[i] != hi[i] {
			if i == 0 {
				return fmt.Errorf("%w: %v here, another operation (%v…%v) elsewhere", ErrMismatch, sig.Coll, Coll(lo[i]), Coll(hi[i]))
			}
			return fmt.Errorf("%w: %v with %s from %d to %d", ErrMismatch, sig.Coll, name, lo[i], hi[i])
		}
	}
	if hi[sigFields-1] != 0 {
		return fmt.Errorf("%w: %v: another rank's arguments failed its checks", ErrMismatch, sig.Coll)
	}
	if out[2*sigFields] != 0 {
		return fmt.Errorf("%w: %v: the counts of a sender and its receiver differ", ErrMismatch, sig.Coll)
	}
	return nil
}

// verifyReducer combines Verify's vectors: min over the first 2·sigFields values, a wrapping
// sum over the last.
var verifyReducer = Reducer{Size: 8 * (2*sigFields + 1), Commutative: true, Func: func(inout, in []byte) {
	a, b := view.As[int64](inout), view.As[int64](in)
	for k := 0; k < len(a); k += 2*sigFields + 1 {
		for i := k; i < k+2*sigFields; i++ {
			a[i] = min(a[i], b[i])
		}
		a[k+2*sigFields] += b[k+2*sigFields]
	}
}}
