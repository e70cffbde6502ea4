package collref

import (
	"slices"

	"github.com/gorun-hpc/gorun/comm"
)

// The Cartesian grid by hand, for the tests of comm's Cart: cells in row-major order (the last
// dimension varies fastest), as MPI numbers them.

// GridCoords is cell's coordinates.
func GridCoords(dims []int, cell int) []int {
	x := make([]int, len(dims))
	for d := len(dims) - 1; d >= 0; d-- {
		x[d] = cell % dims[d]
		cell /= dims[d]
	}
	return x
}

// GridCell is the cell at coordinates x (each inside its dimension).
func GridCell(dims, x []int) int {
	cell := 0
	for d, k := range dims {
		cell = cell*k + x[d]
	}
	return cell
}

// GridShift is MPI_Cart_shift: the cells disp before and after x along d, comm.ProcNull past
// a non-periodic edge.
func GridShift(dims []int, periodic []bool, x []int, d, disp int) (src, dst int) {
	at := func(v int) int {
		k := dims[d]
		if v < 0 || v >= k {
			if !periodic[d] {
				return comm.ProcNull
			}
			v = (v%k + k) % k
		}
		y := slices.Clone(x)
		y[d] = v
		return GridCell(dims, y)
	}
	return at(x[d] - disp), at(x[d] + disp)
}
