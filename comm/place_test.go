package comm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// Internal tests of the grid arithmetic: DimsCreate and balancedFactors against a brute
// force, bisectionOrder's cells, and placeGrid's promise (never more cross-node neighbour
// pairs than row-major order) against an independent count of the pairs.

func TestDimsCreate(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		dims []int
		want []int // nil: ErrTopology
	}{
		{"12 in 2", 12, []int{0, 0}, []int{4, 3}},
		{"12 in 3", 12, []int{0, 0, 0}, []int{3, 2, 2}},
		{"16 in 3", 16, []int{0, 0, 0}, []int{4, 2, 2}},
		{"16 in 2", 16, []int{0, 0}, []int{4, 4}},
		{"prime in 2", 7, []int{0, 0}, []int{7, 1}},
		{"1 in 1", 1, []int{0}, []int{1}},
		{"1 in 3", 1, []int{0, 0, 0}, []int{1, 1, 1}},
		{"8 in 1", 8, []int{0}, []int{8}},
		{"24 in 3", 24, []int{0, 0, 0}, []int{4, 3, 2}},
		{"36 in 4", 36, []int{0, 0, 0, 0}, []int{3, 3, 2, 2}},
		{"fixed last", 12, []int{0, 3}, []int{4, 3}},
		{"fixed first", 12, []int{3, 0}, []int{3, 4}},
		{"fixed middle", 24, []int{0, 2, 0}, []int{4, 2, 3}},
		{"fixed larger than the free", 6, []int{0, 0, 6}, []int{1, 1, 6}},
		{"all fixed", 12, []int{2, 3, 2}, []int{2, 3, 2}},
		{"no dimensions, one rank", 1, []int{}, []int{}},
		{"fixed does not divide", 12, []int{0, 5}, nil},
		{"fixed product too large", 12, []int{0, 24}, nil},
		{"fixed product does not divide", 12, []int{8, 0}, nil},
		{"negative", 12, []int{0, -3}, nil},
		{"zero ranks", 0, []int{0, 0}, nil},
		{"negative ranks", -4, []int{0}, nil},
		{"all fixed, wrong product", 12, []int{2, 3}, nil},
		{"all fixed, product too large", 12, []int{4, 6}, nil},
		{"no dimensions, several ranks", 4, []int{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.dims)
			got, err := DimsCreate(tc.n, in)
			if !slices.Equal(in, tc.dims) {
				t.Errorf("DimsCreate modified its argument: %v, was %v", in, tc.dims)
			}
			if tc.want == nil {
				if !errors.Is(err, ErrTopology) {
					t.Fatalf("DimsCreate(%d, %v) = %v, %v; want ErrTopology", tc.n, tc.dims, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("DimsCreate(%d, %v) = %v, %v; want %v", tc.n, tc.dims, got, err, tc.want)
			}
			if len(got) > 0 && &got[0] == &in[0] {
				t.Errorf("DimsCreate returned its argument's array")
			}
		})
	}
}

// TestDimsCreateProduct: for every n and every pattern of fixed entries that divide it, the
// result keeps the fixed entries, multiplies to n, and fills the zeros with what
// balancedFactors gives for the rest.
func TestDimsCreateProduct(t *testing.T) {
	for n := 1; n <= 64; n++ {
		for _, fixed := range []int{1, 2, 3, 4} {
			if n%fixed != 0 {
				continue
			}
			dims := []int{0, fixed, 0}
			got, err := DimsCreate(n, dims)
			if err != nil {
				t.Fatalf("DimsCreate(%d, %v): %v", n, dims, err)
			}
			if got[1] != fixed || got[0]*got[1]*got[2] != n || got[0] < got[2] {
				t.Fatalf("DimsCreate(%d, %v) = %v", n, dims, got)
			}
			if f := balancedFactors(n/fixed, 2); f[0] != got[0] || f[1] != got[2] {
				t.Fatalf("DimsCreate(%d, %v) = %v, balancedFactors(%d, 2) = %v", n, dims, got, n/fixed, f)
			}
		}
	}
}

// bruteFactors lists every non-increasing k-tuple of positive integers whose product is m.
func bruteFactors(m, k int) [][]int {
	var out [][]int
	var rec func(cur []int, rest int)
	rec = func(cur []int, rest int) {
		if len(cur) == k {
			if rest == 1 {
				out = append(out, slices.Clone(cur))
			}
			return
		}
		limit := rest
		if len(cur) > 0 {
			limit = min(limit, cur[len(cur)-1])
		}
		for d := 1; d <= limit; d++ {
			if rest%d == 0 {
				rec(append(cur, d), rest/d)
			}
		}
	}
	rec(nil, m)
	return out
}

// TestBalancedFactors: balancedFactors gives a non-increasing factorization of m into k
// factors with the smallest spread (largest minus smallest) and, among those, the smallest
// largest factor, as a search of every factorization finds them.
func TestBalancedFactors(t *testing.T) {
	for k := 1; k <= 4; k++ {
		for m := 1; m <= 200; m++ {
			all := bruteFactors(m, k)
			if len(all) == 0 {
				t.Fatalf("brute force found no factorization of %d into %d", m, k)
			}
			bestSpread, bestLargest := m, m
			for _, f := range all {
				s := f[0] - f[k-1]
				if s < bestSpread || s == bestSpread && f[0] < bestLargest {
					bestSpread, bestLargest = s, f[0]
				}
			}
			got := balancedFactors(m, k)
			if len(got) != k {
				t.Fatalf("balancedFactors(%d, %d) = %v: %d factors", m, k, got, len(got))
			}
			if !slices.ContainsFunc(all, func(f []int) bool { return slices.Equal(f, got) }) {
				t.Fatalf("balancedFactors(%d, %d) = %v: not a non-increasing factorization", m, k, got)
			}
			if s := got[0] - got[k-1]; s != bestSpread || got[0] != bestLargest {
				t.Fatalf("balancedFactors(%d, %d) = %v (spread %d, largest %d), best has spread %d, largest %d",
					m, k, got, s, got[0], bestSpread, bestLargest)
			}
		}
	}
}

func TestReaches(t *testing.T) {
	for d := 1; d <= 12; d++ {
		for parts := 1; parts <= 5; parts++ {
			p := 1
			for range parts {
				p *= d
			}
			for rest := 1; rest <= 300; rest++ {
				if got := reaches(d, parts, rest); got != (p >= rest) {
					t.Fatalf("reaches(%d, %d, %d) = %v, %d^%d = %d", d, parts, rest, got, d, parts, p)
				}
			}
		}
	}
}

var gridShapes = [][]int{
	{1}, {2}, {7}, {16},
	{1, 1}, {2, 2}, {4, 4}, {2, 4}, {4, 2}, {3, 5}, {1, 6}, {6, 1}, {8, 3},
	{2, 2, 2}, {3, 2, 2}, {4, 3, 2}, {1, 5, 1}, {5, 5, 5},
	{2, 1, 3, 2},
}

func cellsOf(dims []int) int {
	n := 1
	for _, k := range dims {
		n *= k
	}
	return n
}

// coordsOf is the row-major decomposition of cell in a grid of dims.
func coordsOf(dims []int, cell int) []int {
	x := make([]int, len(dims))
	for d := len(dims) - 1; d >= 0; d-- {
		x[d] = cell % dims[d]
		cell /= dims[d]
	}
	return x
}

// TestBisectionOrder: the order lists every cell once, and its halves (then quarters…) are
// boxes: the first 2^j·⌊cells/2^j⌋ … at least, the first half of an even grid's longest
// dimension is one box.
func TestBisectionOrder(t *testing.T) {
	for _, dims := range gridShapes {
		t.Run(fmt.Sprint(dims), func(t *testing.T) {
			order := bisectionOrder(dims)
			n := cellsOf(dims)
			if len(order) != n {
				t.Fatalf("%d cells listed, grid has %d", len(order), n)
			}
			seen := make([]bool, n)
			for _, c := range order {
				if c < 0 || c >= n || seen[c] {
					t.Fatalf("order %v is not a permutation of 0..%d", order, n-1)
				}
				seen[c] = true
			}
			// The first half (by the cut of the longest dimension) is a box: the cells with
			// coordinate below the middle along that dimension.
			longest, size := -1, 1
			for d, k := range dims {
				if k > size {
					longest, size = d, k
				}
			}
			if longest < 0 {
				return
			}
			half := n / size * (size / 2)
			for _, c := range order[:half] {
				if x := coordsOf(dims, c); x[longest] >= size/2 {
					t.Fatalf("cell %v is in the first %d of %v but past the cut of dimension %d", x, half, order, longest)
				}
			}
		})
	}
}

// crossPairs counts, independently of gridCost, the neighbour pairs of the placement cellOf
// (rank → cell) whose ranks' nodes differ, and on one node whose known L3s differ: every cell
// and its +1 neighbour along every dimension (wrapping where periodic).
func crossPairs(dims []int, periodic []bool, loc []locality, cellOf []int) cost {
	n := cellsOf(dims)
	rankAt := make([]int, n)
	for r, c := range cellOf {
		rankAt[c] = r
	}
	var out cost
	for c := range n {
		x := coordsOf(dims, c)
		for d, k := range dims {
			y := slices.Clone(x)
			y[d]++
			if y[d] == k {
				if !periodic[d] {
					continue
				}
				y[d] = 0
			}
			nb := 0
			for e, k := range dims {
				nb = nb*k + y[e]
			}
			a, b := loc[rankAt[c]], loc[rankAt[nb]]
			switch {
			case a.node != b.node:
				out.node++
			case a.l3 >= 0 && b.l3 >= 0 && a.l3 != b.l3:
				out.l3++
			}
		}
	}
	return out
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

func periodicPatterns(k int) [][]bool {
	var out [][]bool
	for mask := range 1 << k {
		p := make([]bool, k)
		for d := range p {
			p[d] = mask>>d&1 == 1
		}
		out = append(out, p)
	}
	return out
}

// TestGridCost: gridCost agrees with crossPairs on random placements and localities.
func TestGridCost(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for _, dims := range gridShapes {
		n := cellsOf(dims)
		for _, periodic := range periodicPatterns(len(dims)) {
			for range 5 {
				loc := randomLocality(rng, n)
				cellOf := rng.Perm(n)
				if got, want := gridCost(dims, periodic, loc, cellOf), crossPairs(dims, periodic, loc, cellOf); got != want {
					t.Fatalf("dims %v periodic %v loc %v cells %v: gridCost %+v, counted %+v", dims, periodic, loc, cellOf, got, want)
				}
			}
		}
	}
}

func randomLocality(rng *rand.Rand, n int) []locality {
	nodes := 1 + rng.IntN(4)
	l3s := rng.IntN(3) // 0: unknown
	loc := make([]locality, n)
	for r := range loc {
		loc[r] = locality{node: rng.IntN(nodes), l3: -1}
		if l3s > 0 {
			loc[r].l3 = rng.IntN(l3s + 1)
			if rng.IntN(5) == 0 {
				loc[r].l3 = -1
			}
		}
	}
	return loc
}

// checkPlacement checks that p is a permutation of the cells and costs no more than
// row-major order (node pairs; L3 pairs when every rank is on one node).
func checkPlacement(t *testing.T, dims []int, periodic []bool, loc []locality, p []int) (got, rowMajor cost) {
	t.Helper()
	n := cellsOf(dims)
	if len(p) != n {
		t.Fatalf("placement of %d ranks for %d cells", len(p), n)
	}
	seen := make([]bool, n)
	for _, c := range p {
		if c < 0 || c >= n || seen[c] {
			t.Fatalf("placement %v is not a permutation", p)
		}
		seen[c] = true
	}
	got, rowMajor = crossPairs(dims, periodic, loc, p), crossPairs(dims, periodic, loc, identity(n))
	if got.node > rowMajor.node {
		t.Fatalf("dims %v periodic %v loc %v: placement %v has %d cross-node pairs, row-major %d", dims, periodic, loc, p, got.node, rowMajor.node)
	}
	oneNode := !slices.ContainsFunc(loc, func(l locality) bool { return l.node != loc[0].node })
	if oneNode && got.l3 > rowMajor.l3 {
		t.Fatalf("dims %v periodic %v loc %v: placement %v has %d cross-L3 pairs, row-major %d", dims, periodic, loc, p, got.l3, rowMajor.l3)
	}
	if !slices.Equal(p, identity(n)) && !(got.node < rowMajor.node || oneNode && got.l3 < rowMajor.l3) {
		t.Fatalf("dims %v loc %v: placement %v (cost %+v) is no better than row-major (%+v) yet differs", dims, loc, p, got, rowMajor)
	}
	return got, rowMajor
}

// TestPlaceGridNeverWorse: a property over random localities (seeded): placeGrid's placement
// is a permutation, never crosses nodes more often than row-major, and is deterministic.
func TestPlaceGridNeverWorse(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 17))
	better := 0
	for trial := range 2000 {
		dims := gridShapes[rng.IntN(len(gridShapes))]
		periodic := periodicPatterns(len(dims))[rng.IntN(1<<len(dims))]
		loc := randomLocality(rng, cellsOf(dims))
		if trial%3 == 0 { // round robin or blocks of nodes, the usual launcher layouts
			k := 1 + rng.IntN(4)
			for r := range loc {
				if trial%2 == 0 {
					loc[r].node = r % k
				} else {
					loc[r].node = r * k / len(loc)
				}
			}
		}
		p := placeGrid(dims, periodic, loc)
		got, row := checkPlacement(t, dims, periodic, loc, p)
		if got.node < row.node {
			better++
		}
		if again := placeGrid(dims, periodic, slices.Clone(loc)); !slices.Equal(again, p) {
			t.Fatalf("placeGrid is not deterministic: %v then %v", p, again)
		}
	}
	if better == 0 {
		t.Fatalf("placeGrid never beat row-major in 2000 random layouts")
	}
	t.Logf("%d of 2000 layouts placed with fewer cross-node pairs", better)
}

// TestPlaceGridStrictlyBetter: where row-major order is bad (nodes dealt round robin), the
// placement crosses nodes strictly less often.
func TestPlaceGridStrictlyBetter(t *testing.T) {
	roundRobin := func(n, nodes int) []locality {
		loc := make([]locality, n)
		for r := range loc {
			loc[r] = locality{node: r % nodes, l3: -1}
		}
		return loc
	}
	for _, tc := range []struct {
		name          string
		dims          []int
		periodic      []bool
		nodes         int
		rowMajor, got int // cross-node pairs
	}{
		// Row-major: every row's 3 neighbour pairs cross; placed: 2x2 quadrants, 8 pairs.
		{"4x4 4 nodes", []int{4, 4}, []bool{false, false}, 4, 12, 8},
		{"4x4 4 nodes periodic columns", []int{4, 4}, []bool{false, true}, 4, 16, 12},
		{"2x4 2 nodes cyclic", []int{2, 4}, []bool{false, false}, 2, 6, 2},
		{"2x4 2 nodes cyclic periodic", []int{2, 4}, []bool{true, true}, 2, 8, 4},
		{"4x2 4 nodes cyclic", []int{4, 2}, []bool{false, false}, 4, 10, 6},
		{"4x2 4 nodes cyclic periodic", []int{4, 2}, []bool{true, true}, 4, 16, 8},
		{"line of 8, 2 nodes cyclic", []int{8}, []bool{false}, 2, 7, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := roundRobin(cellsOf(tc.dims), tc.nodes)
			p := placeGrid(tc.dims, tc.periodic, loc)
			got, row := checkPlacement(t, tc.dims, tc.periodic, loc, p)
			if row.node != tc.rowMajor || got.node != tc.got {
				t.Fatalf("placement %v: %d cross-node pairs (row-major %d), want %d (row-major %d)", p, got.node, row.node, tc.got, tc.rowMajor)
			}
		})
	}
}

// TestPlaceGridKeepsRowMajor: where the bisection is no better (one node without L3 facts;
// nodes already in blocks; a torus where stripes and quadrants cut as many pairs), row-major
// order stays.
func TestPlaceGridKeepsRowMajor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dims     []int
		periodic []bool
		node     func(r, n int) int
	}{
		{"one node", []int{4, 2}, []bool{false, false}, func(r, n int) int { return 0 }},
		{"row blocks", []int{4, 4}, []bool{false, false}, func(r, n int) int { return r / 8 }},
		{"4x4 torus round robin", []int{4, 4}, []bool{true, true}, func(r, n int) int { return r % 4 }},
		{"every rank its own node", []int{3, 3}, []bool{true, false}, func(r, n int) int { return r }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := cellsOf(tc.dims)
			loc := make([]locality, n)
			for r := range loc {
				loc[r] = locality{node: tc.node(r, n), l3: -1}
			}
			if p := placeGrid(tc.dims, tc.periodic, loc); !slices.Equal(p, identity(n)) {
				t.Fatalf("placement %v, want row-major", p)
			}
		})
	}
}

// TestPlaceGridL3: on one node, the L3 facts decide: ranks dealt round robin to two L3s are
// placed so fewer neighbour pairs cross L3s.
func TestPlaceGridL3(t *testing.T) {
	dims, periodic := []int{4, 2}, []bool{false, false}
	loc := make([]locality, 8)
	for r := range loc {
		loc[r] = locality{node: 0, l3: r % 2}
	}
	p := placeGrid(dims, periodic, loc)
	got, row := checkPlacement(t, dims, periodic, loc, p)
	if got.l3 >= row.l3 {
		t.Fatalf("placement %v: %d cross-L3 pairs, row-major %d", p, got.l3, row.l3)
	}
	// Across nodes the L3 facts do not choose (the ranks of other nodes see other facts): two
	// nodes in blocks of rows already cross as little as the bisection would.
	for r := range loc {
		loc[r].node = r / 4
	}
	if p := placeGrid(dims, periodic, loc); !slices.Equal(p, identity(8)) {
		t.Fatalf("two nodes in blocks, L3s round robin: placement %v, want row-major", p)
	}
}
