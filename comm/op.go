package comm

import "github.com/gorun-hpc/gorun/collective"

// Op is a predefined reduction operation. Sum and Prod apply to every Number; Min and Max to
// every Number but complex ones; Band, Bor, Bxor (bitwise) and Land, Lor (logical: non-zero
// is true, the result is 1 or 0) to integers only. An op that does not apply is an ErrOp
// error on every rank, never a panic.
type Op = collective.Op

const (
	Sum  = collective.Sum
	Prod = collective.Prod
	Min  = collective.Min
	Max  = collective.Max
	Band = collective.Band
	Bor  = collective.Bor
	Bxor = collective.Bxor
	Land = collective.Land
	Lor  = collective.Lor
)
