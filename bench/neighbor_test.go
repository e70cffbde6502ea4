package bench_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/bench"
	"github.com/gorun-hpc/gorun/internal/jobtest"
)

// The neighbourhood benchmarks (neighbor.go) run as the ranks of a real job on every grid
// shape DimsCreate makes for 1-8 ranks: 1×1 (all four neighbours are the rank itself), 2×1
// (the other rank twice, itself twice), 3×1, 2×2 (two ranks, each twice) and 4×2. Each rank
// checks that every face landed in its block, so a job that exits 0 moved the right bytes; a
// large face takes the large-message paths too. Sizes start at 8 bytes whatever -m asks.
func TestNeighborSubcommands(t *testing.T) {
	prog := jobtest.Program(t, "../cmd/gorun-bench")
	type run struct {
		ranks []int
		sizes string
		want  []int
	}
	runs := []run{
		{[]int{1, 2, 3, 4, 8}, "1:16", []int{8, 16}},
		{[]int{2, 4}, "256K:256K", []int{256 << 10}},
	}
	for _, name := range []string{"neighbor_alltoall", "neighbor_isend"} {
		for _, r := range runs {
			for _, n := range r.ranks {
				t.Run(fmt.Sprintf("%s/n%d/%s", name, n, r.sizes), func(t *testing.T) {
					args := append([]string{name, "-m", r.sizes}, tiny...)
					res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: args, Timeout: 30 * time.Second})
					got, err := bench.ReadResult(strings.NewReader(res.Stdout))
					if err != nil {
						t.Fatalf("%v\n%s", err, res.Stdout)
					}
					checkTable(t, got, r.want, res.Stdout)
					if !strings.HasPrefix(res.Stdout, "# gorun Neighbor ") {
						t.Errorf("the first line is not the benchmark's title:\n%s", res.Stdout)
					}
					if want := fmt.Sprintf("%d ranks", n); !strings.Contains(res.Stdout, want) {
						t.Errorf("header does not say %q:\n%s", want, res.Stdout)
					}
				})
			}
		}
	}
}
