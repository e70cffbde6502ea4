package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/bench"
)

func TestUsageAndErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // in stdout (code 0) or stderr
	}{
		{"no arguments", nil, 2, "Usage:"},
		{"help", []string{"--help"}, 0, "mbw_mr"},
		{"unknown", []string{"pingpong"}, 2, `unknown benchmark "pingpong"`},
		{"bad flag", []string{"latency", "-q"}, 2, "flag provided but not defined"},
		{"bad transport", []string{"bw", "--transport", "ib"}, 2, `--transport "ib"`},
		{"bad comm", []string{"allreduce", "--comm", "split"}, 2, `--comm "split"`},
		{"bad sizes", []string{"latency", "-m", "9:1"}, 2, "min above max"},
		{"stray argument", []string{"latency", "extra"}, 2, `unexpected argument "extra"`},
		{"benchmark help", []string{"latency", "-h"}, 0, "--transport"},
		{"model help", []string{"model", "--help"}, 0, "tuning file"},
		{"batch setting", []string{"batch", "--settings", "32"}, 2, "want off or A/tau"},
		{"plot needs output", []string{"plot", "a.json"}, 2, "-o OUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			out := stderr.String()
			if code == 0 {
				out = stdout.String()
			}
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s%s", code, tc.code, tc.out, stdout.String(), stderr.String())
			}
		})
	}
}

func TestHelpListsEveryBenchmark(t *testing.T) {
	var b bytes.Buffer
	usage(&b)
	for _, bm := range bench.Benchmarks() {
		if !strings.Contains(b.String(), "  "+bm.Name+" ") {
			t.Errorf("usage lacks %s", bm.Name)
		}
	}
}

// The plot command takes flags after its files, reads OSU tables and JSON alike, and writes
// the format the extension names.
func TestPlotCommand(t *testing.T) {
	dir := t.TempDir()
	osu := filepath.Join(dir, "osu-ompi.txt")
	write(t, osu, "# OSU MPI Latency Test v7.4\n# Size          Latency (us)\n1    0.20\n8    0.21\n4096   1.50\n")
	var js bytes.Buffer
	r := &bench.Result{Benchmark: "latency", Title: "OSU MPI Latency Test", Transport: "shm", Sized: true,
		Columns: []string{"Latency (us)"}, Rows: []bench.Row{{Size: 1, Values: []float64{0.3}}, {Size: 8, Values: []float64{0.3}}, {Size: 4096, Values: []float64{1.1}}}}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	gorun := filepath.Join(dir, "gorun.json")
	write(t, gorun, js.String())
	for _, out := range []string{"side.svg", "side.png"} {
		var stdout, stderr bytes.Buffer
		path := filepath.Join(dir, out)
		if code := run([]string{"plot", osu, gorun, "-o", path, "--fit", "--title", "t"}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
			t.Errorf("%s: %v", out, err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"plot", osu, "-o", filepath.Join(dir, "x.txt")}, &stdout, &stderr); code != 1 {
		t.Errorf("an unknown format: exit %d", code)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
