package comm

import (
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/gorun-hpc/gorun/collective"
)

// DimsCreate fills the zeros of dims with a balanced factorization of n (MPI_Dims_create): the
// product of the result is n, its nonzero entries are those of dims, and the filled ones are
// as close to one another as possible (the smallest spread between the largest and the
// smallest, then the smallest largest), in non-increasing order. dims is not modified. A
// negative entry, n < 1, or fixed entries whose product does not divide n is ErrTopology.
func DimsCreate(n int, dims []int) ([]int, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: DimsCreate of %d ranks", ErrTopology, n)
	}
	fixed, free := 1, 0
	for i, d := range dims {
		switch {
		case d < 0:
			return nil, fmt.Errorf("%w: DimsCreate: dimension %d is %d", ErrTopology, i, d)
		case d == 0:
			free++
		case d > n/fixed || n%(fixed*d) != 0:
			return nil, fmt.Errorf("%w: DimsCreate: the fixed dimensions %v do not divide %d", ErrTopology, dims, n)
		default:
			fixed *= d
		}
	}
	m := n / fixed
	if free == 0 {
		if m != 1 {
			return nil, fmt.Errorf("%w: DimsCreate: dimensions %v make %d ranks, not %d", ErrTopology, dims, fixed, n)
		}
		return slices.Clone(dims), nil
	}
	f := balancedFactors(m, free)
	out := slices.Clone(dims)
	for i := range out {
		if out[i] == 0 {
			out[i], f = f[0], f[1:]
		}
	}
	return out, nil
}

// balancedFactors returns k factors of m ≥ 1, non-increasing, with the smallest spread
// (largest minus smallest), ties broken by the smallest largest factor. It searches the
// non-increasing factorizations depth first; a candidate d for the next factor must satisfy
// d^parts ≥ rest, or the remaining factors (each ≤ d) could not reach rest.
func balancedFactors(m, k int) []int {
	var best []int
	cur := make([]int, 0, k)
	var search func(rest, parts, limit int)
	search = func(rest, parts, limit int) {
		if parts == 1 {
			if rest > limit {
				return
			}
			cand := append(cur, rest)
			if best == nil || spreadLess(cand, best) {
				best = slices.Clone(cand)
			}
			return
		}
		for d := min(rest, limit); d >= 1 && reaches(d, parts, rest); d-- {
			if rest%d == 0 {
				cur = append(cur, d)
				search(rest/d, parts-1, d)
				cur = cur[:len(cur)-1]
			}
		}
	}
	search(m, k, m)
	return best
}

// reaches reports whether d^parts ≥ rest (without overflow).
func reaches(d, parts, rest int) bool {
	p := 1
	for range parts {
		if p >= (rest+d-1)/d {
			return true
		}
		p *= d
	}
	return p >= rest
}

// spreadLess orders non-increasing factor lists by spread, then by largest factor.
func spreadLess(a, b []int) bool {
	sa, sb := a[0]-a[len(a)-1], b[0]-b[len(b)-1]
	if sa != sb {
		return sa < sb
	}
	return a[0] < b[0]
}

// Cart is a communicator whose ranks form a Cartesian grid (MPI_Cart_create): rank r sits at
// the coordinates of r in row-major order (the last dimension varies fastest). It is a *Comm
// for every other purpose, and a Topology for the neighbourhood collectives, whose
// neighbours are, per dimension, the -1 then the +1 neighbour.
type Cart struct {
	*Comm
	dims     []int
	periodic []bool
	nb       collective.Neighborhood // this rank's neighbourhood, made once
}

// Cart returns a Cartesian communicator over the first prod(dims) ranks of c, a grid with
// len(dims) dimensions of dims[d] ranks, periodic (wrapping around) where periodic[d]. Ranks
// of c beyond the grid get nil, nil. With reorder, ranks may take other positions than their
// rank order, so that fewer grid neighbours sit on different nodes (and, within a node, under
// different L3 caches) than in row-major order; the placement is kept only if it is better.
//
// Collective over c; every rank passes the same arguments: if they differ, or one rank's are
// invalid (a dimension < 1, more cells than ranks, len(periodic) != len(dims)), every rank
// gets an error (ErrTopology where this rank's are invalid, else ErrMismatch).
func (c *Comm) Cart(dims []int, periodic []bool, reorder bool) (*Cart, error) {
	if err := c.check(0, false); err != nil {
		return nil, err
	}
	cells, err := gridCells(dims, periodic, c.size)
	agree := argHash(reorder, dims, periodic)
	color, key := Undefined, c.rank
	if err != nil {
		agree = ^agree // a rank that rejects its arguments makes the others fail too
	} else if c.rank < cells {
		color = 0
		if reorder {
			key = placeGrid(dims, periodic, c.locality(cells))[c.rank]
		}
	}
	n, serr := c.split(color, key, agree)
	if err != nil {
		return nil, err
	}
	if n == nil || serr != nil {
		return nil, serr
	}
	return newCart(n, dims, periodic), nil
}

// newCart makes the Cart over n (whose size is prod(dims)) and its neighbourhood.
func newCart(n *Comm, dims []int, periodic []bool) *Cart {
	t := &Cart{Comm: n, dims: slices.Clone(dims), periodic: slices.Clone(periodic)}
	k := 2 * len(dims)
	t.nb = collective.Neighborhood{Sources: make([]int, k), RecvTags: make([]int, k), SendTags: make([]int, k)}
	for d := range dims {
		t.nb.Sources[2*d], t.nb.Sources[2*d+1] = t.Shift(d, 1)
	}
	t.nb.Destinations = t.nb.Sources
	// The block this rank sends to its -1 neighbour is that rank's block from its +1
	// neighbour, and the reverse: the tag names the block at the receiver.
	for i := range k {
		t.nb.RecvTags[i], t.nb.SendTags[i] = i, i^1
	}
	return t
}

// gridCells checks a grid's arguments for a communicator of size ranks and returns its number
// of cells.
func gridCells(dims []int, periodic []bool, size int) (int, error) {
	if len(periodic) != len(dims) {
		return 0, fmt.Errorf("%w: %d dimensions and %d periodic flags", ErrTopology, len(dims), len(periodic))
	}
	cells := 1
	for d, k := range dims {
		if k < 1 {
			return 0, fmt.Errorf("%w: dimension %d has %d ranks", ErrTopology, d, k)
		}
		if k > size/cells {
			return 0, fmt.Errorf("%w: a grid of %v needs more than the %d ranks of the communicator", ErrTopology, dims, size)
		}
		cells *= k
	}
	return cells, nil
}

// argHash is a hash of a constructor's arguments, the same in every process (Split's agree).
func argHash(flag bool, ints []int, bools []bool) int64 {
	h := fnv.New64a()
	b := []byte{0}
	if flag {
		b[0] = 1
	}
	h.Write(b)
	fmt.Fprint(h, ints, bools)
	return int64(h.Sum64())
}

// Dims returns the number of ranks along each dimension.
func (t *Cart) Dims() []int { return slices.Clone(t.dims) }

// Periodic returns which dimensions wrap around.
func (t *Cart) Periodic() []bool { return slices.Clone(t.periodic) }

// Neighbors returns the neighbourhood collectives' neighbours: per dimension d, the rank at
// -1 (sources[2d]) and at +1 (sources[2d+1]) along d, ProcNull past a non-periodic edge.
// Sources and destinations are the same list.
func (t *Cart) Neighbors() (sources, destinations []int) {
	return slices.Clone(t.nb.Sources), slices.Clone(t.nb.Destinations)
}

func (t *Cart) neighborhood() (*Comm, *collective.Neighborhood) {
	if t == nil {
		return nil, &collective.Neighborhood{} // begin reports the nil communicator
	}
	return t.Comm, &t.nb
}

// Coords returns the coordinates of rank in the grid, or nil if rank is not in it.
func (t *Cart) Coords(rank int) []int {
	if rank < 0 || rank >= t.size {
		return nil
	}
	out := make([]int, len(t.dims))
	for d := len(t.dims) - 1; d >= 0; d-- {
		out[d] = rank % t.dims[d]
		rank /= t.dims[d]
	}
	return out
}

// RankOf returns the rank at coords. A coordinate outside a periodic dimension wraps around;
// outside a non-periodic one it is ErrRank; a wrong number of coordinates is ErrTopology.
func (t *Cart) RankOf(coords []int) (int, error) {
	if len(coords) != len(t.dims) {
		return 0, fmt.Errorf("%w: %d coordinates in a grid of %d dimensions", ErrTopology, len(coords), len(t.dims))
	}
	r := 0
	for d, x := range coords {
		k := t.dims[d]
		if x < 0 || x >= k {
			if !t.periodic[d] {
				return 0, fmt.Errorf("%w: coordinate %d is %d, outside [0, %d) and not periodic", ErrRank, d, x, k)
			}
			x = (x%k + k) % k
		}
		r = r*k + x
	}
	return r, nil
}

// Shift returns the ranks disp steps before (src) and after (dst) this rank along dimension
// dim (MPI_Cart_shift): a halo exchange sends to dst and receives from src. Past a
// non-periodic edge, or for a dimension not in the grid, the rank is ProcNull.
func (t *Cart) Shift(dim, disp int) (src, dst int) {
	if dim < 0 || dim >= len(t.dims) {
		return ProcNull, ProcNull
	}
	me := t.Coords(t.rank)
	at := func(x int) int {
		c := slices.Clone(me)
		c[dim] = x
		r, err := t.RankOf(c)
		if err != nil {
			return ProcNull
		}
		return r
	}
	return at(me[dim] - disp), at(me[dim] + disp)
}

// Sub splits the grid into the lower-dimensional grids that keep the dimensions where keep is
// true (MPI_Cart_sub): ranks that agree on every dropped coordinate form one, ordered as
// their kept coordinates. Keeping no dimension gives each rank a grid of its own (size 1, no
// dimensions). Collective over t; every rank passes the same keep.
func (t *Cart) Sub(keep []bool) (*Cart, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: nil grid", ErrClosed)
	}
	if err := t.check(0, false); err != nil {
		return nil, err
	}
	var err error
	if len(keep) != len(t.dims) {
		err = fmt.Errorf("%w: Sub with %d flags in a grid of %d dimensions", ErrTopology, len(keep), len(t.dims))
	}
	agree := argHash(false, nil, keep)
	color, key := 0, 0
	var dims []int
	var periodic []bool
	if err != nil {
		agree = ^agree
	} else {
		me := t.Coords(t.rank)
		for d, k := range t.dims {
			if keep[d] {
				key = key*k + me[d]
				dims, periodic = append(dims, k), append(periodic, t.periodic[d])
			} else {
				color = color*k + me[d]
			}
		}
	}
	n, serr := t.split(color, key, agree)
	if err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	return newCart(n, dims, periodic), nil
}
