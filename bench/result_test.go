package bench

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestTextRoundTrip(t *testing.T) {
	for _, r := range []*Result{
		{Benchmark: "latency", Title: "OSU MPI Latency Test", Transport: "shm", Path: "shm", Ranks: 2, Sized: true,
			Notes: []string{"tuning: built-in defaults"}, Columns: []string{"Latency (us)"},
			Rows: []Row{{0, []float64{0.25}}, {1, []float64{0.26}}, {4194304, []float64{180.5}}}},
		{Benchmark: "mbw_mr", Title: "OSU MPI Multiple Bandwidth / Message Rate Test", Transport: "auto", Ranks: 4, Sized: true,
			Columns: []string{"MB/s", "Messages/s"}, Rows: []Row{{1, []float64{3.5, 3500000}}}},
		{Benchmark: "allreduce", Title: "OSU MPI Allreduce Latency Test", Transport: "tcp", Ranks: 8, Sized: true,
			Columns: collColumns, Rows: []Row{{4, []float64{1.5, 1.25, 2, 1000}}, {8, []float64{1.5, 1.25, 2.75, 1000}}}},
		{Benchmark: "barrier", Title: "OSU MPI Barrier Latency Test", Transport: "shm", Ranks: 4,
			Columns: collColumns, Rows: []Row{{0, []float64{0.5, 0.25, 0.75, 1000}}}},
	} {
		t.Run(r.Benchmark, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.writeText(&b); err != nil {
				t.Fatal(err)
			}
			got, err := ReadResult(&b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			if got.Sized != r.Sized || !reflect.DeepEqual(got.Columns, r.Columns) || !reflect.DeepEqual(got.Rows, r.Rows) {
				t.Errorf("read back\n%+v\nfrom\n%s", got, b.String())
			}
			if want := r.Title + " (gorun-bench, OSU 7 method)"; got.Title != want {
				t.Errorf("title %q, want %q", got.Title, want)
			}
			b.Reset()
			if err := r.WriteJSON(&b); err != nil {
				t.Fatal(err)
			}
			if got, err := ReadResult(&b); err != nil || !reflect.DeepEqual(got, r) {
				t.Errorf("JSON round trip: %+v, %v", got, err)
			}
		})
	}
}

// Tables printed by others: the OSU micro-benchmarks themselves and the C anchors.
func TestReadForeignTables(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		cols       []string
		rows       []Row
	}{
		{"osu_latency", `# OSU MPI Latency Test v7.4
# Datatype: MPI_CHAR.
# Size       Avg Latency(us)
1                       0.18
2                       0.18
`, []string{"Avg Latency(us)"}, []Row{{1, []float64{0.18}}, {2, []float64{0.18}}}},
		{"osu_bw", `
# OSU MPI Bandwidth Test v5.8
# Size      Bandwidth (MB/s)
1                       5.12
`, []string{"Bandwidth (MB/s)"}, []Row{{1, []float64{5.12}}}},
		{"anchor lat", `# size_bytes one_way_latency_us
0 0.101
8 0.100
`, []string{"one_way_latency_us"}, []Row{{0, []float64{0.101}}, {8, []float64{0.1}}}},
		{"anchor coll", `# allreduce float np=8
# size_bytes avg_us min_us max_us iters iter_wall_us
4 15.000 14.000 16.000 1000 15.500
`, []string{"avg_us", "min_us", "max_us", "iters", "iter_wall_us"}, []Row{{4, []float64{15, 14, 16, 1000, 15.5}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ReadResult(strings.NewReader(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Columns, tc.cols) || !reflect.DeepEqual(r.Rows, tc.rows) {
				t.Errorf("got %q %v, want %q %v", r.Columns, r.Rows, tc.cols, tc.rows)
			}
		})
	}
	r, err := ReadResult(strings.NewReader("# Size  a (us)  b (us)\n8  1.5  -\n"))
	if err != nil || len(r.Rows) != 1 || !math.IsNaN(r.Rows[0].Values[1]) {
		t.Errorf("a missing value: %+v, %v", r, err)
	}
	for _, bad := range []string{"", "# only a header\n", "# Size  x\n8 abc\n", "# Size x\nabc 1\n"} {
		if _, err := ReadResult(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadResult(%q) succeeded", bad)
		}
	}
}

func TestParseSizeRange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int
		bad    bool
	}{
		{"1024", 0, 1024, false},
		{"1:4M", 1, 4 << 20, false},
		{"0:64K", 0, 64 << 10, false},
		{"8:", 8, 0, false},
		{"4KiB:1MiB", 4096, 1 << 20, false},
		{"512B:1k", 512, 1024, false},
		{"2:1", 0, 0, true},
		{"x", 0, 0, true},
		{"-1:4", 0, 0, true},
		{"1:2:3", 0, 0, true},
	} {
		lo, hi, err := ParseSizeRange(tc.in)
		if (err != nil) != tc.bad || lo != tc.lo || hi != tc.hi {
			t.Errorf("ParseSizeRange(%q) = %d, %d, %v", tc.in, lo, hi, err)
		}
	}
}

func TestSizesAndIterations(t *testing.T) {
	if got := sizes(0, 16); !reflect.DeepEqual(got, []int{0, 1, 2, 4, 8, 16}) {
		t.Errorf("sizes(0, 16) = %v", got)
	}
	if got := sizes(3, 20); !reflect.DeepEqual(got, []int{4, 8, 16}) {
		t.Errorf("sizes(3, 20) = %v", got)
	}
	var o Options
	for _, tc := range []struct {
		opt         Options
		c           counts
		size        int
		iters, warm int
	}{
		{o, latCounts, 8192, 10000, 100},
		{o, latCounts, 16384, 1000, 10},
		{o, bwCounts, 1 << 20, 20, 2},
		{o, collCounts, 4, 1000, 100},
		{Options{Iterations: 50, Warmup: 5}, latCounts, 8, 50, 5},
		{Options{Iterations: 50, Warmup: 5}, latCounts, 1 << 20, 5, 1},
		{Options{Iterations: 3, Warmup: 1}, collCounts, 1 << 20, 1, 1},
	} {
		i, w := tc.opt.iterations(tc.c, tc.size)
		if i != tc.iters || w != tc.warm {
			t.Errorf("%+v at %d: %d, %d; want %d, %d", tc.opt, tc.size, i, w, tc.iters, tc.warm)
		}
	}
}
