package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
)

func TestMain(m *testing.M) { jobtest.Main(m) }

// The example sorts, and checks itself, at odd and even rank counts over both transports,
// with fewer records than ranks too (empty blocks everywhere).
func TestSampleSort(t *testing.T) {
	prog := jobtest.Program(t, ".")
	for _, tr := range []string{"shm", "tcp"} {
		for _, n := range []int{1, 3, 4, 8} {
			for _, records := range []int{0, 2, 5000} {
				t.Run(fmt.Sprintf("%s/n%d/%d", tr, n, records), func(t *testing.T) {
					res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"-n", fmt.Sprint(records)},
						Env: []string{"GORUN_TRANSPORT=" + tr}, Timeout: time.Minute})
					if want := fmt.Sprintf("sorted %d records on %d ranks: globally sorted and complete", n*records, n); !strings.Contains(res.Stdout, want) {
						t.Fatalf("stdout %q, want %q", res.Stdout, want)
					}
				})
			}
		}
	}
}
