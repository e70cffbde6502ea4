package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/bench"
	"github.com/gorun-hpc/gorun/internal/jobtest"
	"github.com/gorun-hpc/gorun/launcher"
)

// End-to-end: every subcommand of gorun-bench runs as the ranks of a real job at tiny sizes and
// iteration counts, and its output reads back as OSU's layout. Nothing about the numbers is
// checked beyond their being finite and positive.

func TestMain(m *testing.M) { jobtest.Main(m) }

// tiny are the arguments that keep a run short.
var tiny = []string{"-i", "5", "-x", "1", "-W", "4", "--progress", "off"}

func TestEverySubcommand(t *testing.T) {
	prog := jobtest.Program(t, "../cmd/gorun-bench")
	type run struct {
		name  string
		ranks []int
		sizes string
		want  []int // the sizes of the rows
	}
	runs := []run{
		{"latency", []int{2}, "0:64", []int{0, 1, 2, 4, 8, 16, 32, 64}},
		{"bw", []int{2}, "1:16K", []int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}},
		{"bibw", []int{2}, "1:4", []int{1, 2, 4}},
		{"mbw_mr", []int{2, 4}, "1:4", []int{1, 2, 4}},
		{"multi_lat", []int{2, 4}, "0:4", []int{0, 1, 2, 4}},
		{"stream_lat", []int{2}, "8:16", []int{8, 16}},
	}
	for _, c := range []string{"bcast", "allreduce", "reduce", "allgather", "alltoall", "gather", "scatter"} {
		runs = append(runs, run{c, []int{2, 4, 8}, "1:16", []int{1, 2, 4, 8, 16}})
	}
	// reduce_scatter: 1-4 float32 in all, so blocks are unequal (comm.ReduceScatter) on 3 and
	// 8 ranks, and some empty on 8; equal (comm.ReduceScatterBlock) on 2 from 8 bytes.
	runs = append(runs, run{"reduce_scatter", []int{2, 3, 8}, "1:16", []int{1, 2, 4, 8, 16}})
	for _, c := range []string{"gatherv", "scatterv", "allgatherv", "alltoallv"} {
		runs = append(runs, run{c, []int{2, 3, 8}, "1:16", []int{1, 2, 4, 8, 16}})
	}
	runs = append(runs, run{"barrier", []int{2, 4, 8}, "", []int{0}})
	for _, r := range runs {
		for _, n := range r.ranks {
			t.Run(fmt.Sprintf("%s/n%d", r.name, n), func(t *testing.T) {
				args := append([]string{r.name}, tiny...)
				if r.sizes != "" {
					args = append(args, "-m", r.sizes)
				}
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: args, Timeout: 30 * time.Second})
				got, err := bench.ReadResult(strings.NewReader(res.Stdout))
				if err != nil {
					t.Fatalf("%v\n%s", err, res.Stdout)
				}
				checkTable(t, got, r.want, res.Stdout)
				if !strings.HasPrefix(res.Stdout, "# OSU MPI ") && r.name != "stream_lat" {
					t.Errorf("the first line is not OSU's title:\n%s", res.Stdout)
				}
				if want := fmt.Sprintf("%d ranks", n); !strings.Contains(res.Stdout, want) {
					t.Errorf("header does not say %q:\n%s", want, res.Stdout)
				}
			})
		}
	}
}

// allreduce and reduce work on float32: sizes under 4 bytes are skipped.
func checkTable(t *testing.T, r *bench.Result, want []int, out string) {
	t.Helper()
	var sizes []int
	for _, row := range r.Rows {
		sizes = append(sizes, row.Size)
		if len(row.Values) != len(r.Columns) {
			t.Errorf("row %v has %d values for %d columns", row, len(row.Values), len(r.Columns))
		}
		for _, v := range row.Values {
			if !(v >= 0) || math.IsInf(v, 0) {
				t.Errorf("row %v: value %v", row, v)
			}
		}
	}
	if strings.Contains(r.Title, "reduce") || strings.Contains(r.Title, "Reduce") {
		want = want[2:]
	}
	if !reflect.DeepEqual(sizes, want) {
		t.Errorf("sizes %v, want %v\n%s", sizes, want, out)
	}
}

func TestJSONAndTransports(t *testing.T) {
	prog := jobtest.Program(t, "../cmd/gorun-bench")
	for _, tr := range []string{"shm", "unix", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			args := append([]string{"latency", "--json", "--transport", tr, "-m", "1:8"}, tiny...)
			res := jobtest.MustSucceed(t, prog, jobtest.Job{N: 2, Args: args, Timeout: 30 * time.Second})
			var r bench.Result
			if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
				t.Fatalf("%v\n%s", err, res.Stdout)
			}
			if r.Transport != tr || r.Path != tr || r.Benchmark != "latency" || len(r.Rows) != 4 {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// A rank run draws its plot, and the plot command draws saved results side by side.
func TestPlots(t *testing.T) {
	prog := jobtest.Program(t, "../cmd/gorun-bench")
	dir := t.TempDir()
	svg := filepath.Join(dir, "lat.svg")
	args := append([]string{"latency", "--json", "-m", "1:1K", "--plot", svg, "--fit"}, tiny...)
	res := jobtest.MustSucceed(t, prog, jobtest.Job{N: 2, Args: args, Timeout: 30 * time.Second})
	saved := filepath.Join(dir, "gorun-shm.json")
	if err := os.WriteFile(saved, []byte(res.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	anchor := filepath.Join(dir, "lat-ompi.txt")
	if err := os.WriteFile(anchor, []byte("# size_bytes one_way_latency_us\n1 0.1\n8 0.1\n1024 0.3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "both.png")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, prog, "plot", saved, anchor, "-o", png, "--fit").CombinedOutput(); err != nil {
		t.Fatalf("plot: %v\n%s", err, out)
	}
	for _, f := range []string{svg, png} {
		if st, err := os.Stat(f); err != nil || st.Size() < 1000 {
			t.Errorf("plot %s: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(svg); !strings.Contains(string(b), "<svg") {
		t.Errorf("%s is not an SVG", svg)
	}
}

// TestDerivedCommunicator: --comm measures a Dup of the world or SplitNode's communicator,
// and says so in the header; SplitNode's must hold the whole job; allreduce_comms and
// bcast_comms measure all three in one job.
func TestDerivedCommunicator(t *testing.T) {
	prog := jobtest.Program(t, "../cmd/gorun-bench")
	for _, c := range []string{"dup", "splitnode"} {
		for _, name := range []string{"allreduce", "bcast"} {
			t.Run(c+"/"+name, func(t *testing.T) {
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: 3, Args: append([]string{name, "--comm", c, "-m", "1:16"}, tiny...), Timeout: 30 * time.Second})
				got, err := bench.ReadResult(strings.NewReader(res.Stdout))
				if err != nil {
					t.Fatalf("%v\n%s", err, res.Stdout)
				}
				checkTable(t, got, []int{1, 2, 4, 8, 16}, res.Stdout)
				if !strings.Contains(res.Stdout, "# communicator: "+c+" of the world") {
					t.Errorf("the header does not name the communicator:\n%s", res.Stdout)
				}
			})
		}
	}
	// The interleaved comparison: three communicators' columns and their ratios.
	for _, name := range []string{"allreduce_comms", "bcast_comms"} {
		t.Run(name, func(t *testing.T) {
			res := jobtest.MustSucceed(t, prog, jobtest.Job{N: 3, Args: append([]string{name, "-m", "1:16", "-i", "40"}, tiny[2:]...), Timeout: 30 * time.Second})
			got, err := bench.ReadResult(strings.NewReader(res.Stdout))
			if err != nil {
				t.Fatalf("%v\n%s", err, res.Stdout)
			}
			checkTable(t, got, []int{1, 2, 4, 8, 16}, res.Stdout)
		})
	}
	res := jobtest.Run(t, prog, jobtest.Job{N: 2, Args: append([]string{"allreduce", "--comm", "splitnode", "-m", "8:8"}, tiny...),
		Hosts: []launcher.Host{{Name: "localhost", Slots: 1}, {Name: "fake-b", Slots: 1}}, Timeout: 30 * time.Second})
	if res.Err == nil || !strings.Contains(res.Stderr+res.Stdout, "spans several nodes") {
		t.Errorf("splitnode over two nodes: %v\nstdout:\n%s\nstderr:\n%s", res.Err, res.Stdout, res.Stderr)
	}
}
