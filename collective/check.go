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
}

// sigFields is the number of values Verify agrees on: the Signature's five and a flag for
// "this rank's own checks failed".
const sigFields = 6

// Verify makes every rank of c agree that they are running the same collective with the same
// arguments, before any of its data moves. local is this rank's own verdict on its arguments
// (nil if they are fine). Every rank returns an error if any rank passed a different
// signature (ErrMismatch) or had a local error (that error on that rank, ErrMismatch on the
// others), so a bad call fails everywhere instead of hanging or delivering wrong data.
//
// Cost: one allreduce of 12 int64 values (min over each field and its negation, which yields
// the min and the max) by recursive doubling: ceil(log2 n) small exchanges, two more when n is
// not a power of two, per collective call. That is why it runs only when asked for
// (GORUN_CHECK=1); it is off by default.
func Verify(c Comm, sig Signature, local error) error {
	bad := 0
	if local != nil {
		bad = 1
	}
	v := [sigFields]int64{int64(sig.Coll), int64(sig.Count), int64(sig.Root), int64(sig.Op), int64(sig.Elem), int64(bad)}
	var in, out [2 * sigFields]int64
	for i, x := range v {
		in[i], in[sigFields+i] = x, -x
	}
	r, err := NewReducer(Min, kindInt64, 8)
	if err != nil {
		return err
	}
	if err := allreduceRD(c, view.Bytes(in[:]), view.Bytes(out[:]), r, tagCheck); err != nil {
		return fmt.Errorf("%v: argument check: %w", sig.Coll, err)
	}
	if local != nil {
		return local
	}
	var lo, hi [sigFields]int64
	for i := range sigFields {
		lo[i], hi[i] = out[i], -out[sigFields+i]
	}
	names := [sigFields - 1]string{"operation", "count", "root", "op", "element size"}
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
	return nil
}
