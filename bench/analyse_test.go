package bench

import (
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/transport"
)

// lineResult is a latency result that follows L(s) = a + b·s exactly.
func lineResult(a, b float64, maxSize int) *Result {
	r := &Result{Benchmark: "latency", Sized: true, Columns: []string{"Latency (us)"}}
	for _, s := range sizes(8, maxSize) {
		r.Rows = append(r.Rows, Row{Size: s, Values: []float64{a + b*float64(s)}})
	}
	return r
}

// The analysis of synthetic paths with known lines finds the crossovers where the lines meet
// and chooses the thresholds from them.
func TestAnalyseKnownLines(t *testing.T) {
	lines := map[string][2]float64{ // a (µs), b (µs/B)
		pathShmEager: {0.3, 0.1e-3},  // meets pipelined at 2.0/0.08e-3 = 25000 B
		pathShmPipe:  {2.3, 0.02e-3}, // cheapest per byte
		pathShmCMA:   {3.0, 0.07e-3}, // never beats pipelined
		pathUnix:     {4.0, 0.3e-3},  // meets unix-rendezvous at 8.0/0.1e-3 = 80000 B
		pathUnixRndv: {12.0, 0.2e-3}, //
		pathTCP:      {6.0, 0.4e-3},  // meets tcp-rendezvous at 10/0.2e-3 = 50000 B
		pathTCPRndv:  {16.0, 0.2e-3}, //
	}
	cfg := &ModelConfig{Repeat: 2, Iterations: 10, NotifyBytes: 64, Machine: "test"}
	paths := modelPaths(1 << 20)
	runs := make([][]*Result, len(paths))
	for i, p := range paths {
		l := lines[p.Name]
		top := 1 << 20
		if p.MaxSize > 0 {
			top = p.MaxSize
		}
		runs[i] = []*Result{lineResult(l[0], l[1], top), lineResult(l[0], l[1], top)}
	}
	rep, err := analyse(cfg, paths, runs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Paths {
		l := lines[p.Name]
		if !near(p.Fit.A, l[0], 1e-9) || !near(p.Fit.B, l[1], 1e-9) || p.Fit.R2 < 0.999999 {
			t.Errorf("%s: fit %v, want a %g b %g", p.Name, p.Fit, l[0], l[1])
		}
	}
	want := map[string]float64{"shm eager -> pipelined": 25000, "tcp eager -> rendezvous": 50000, "unix eager -> rendezvous": 80000}
	for _, c := range rep.Crossovers {
		for prefix, at := range want {
			if strings.HasPrefix(c.Name, prefix) && (!near(c.Fit, at, 1e-9) || c.Below != c.From) {
				t.Errorf("%s: %+v, want %g below which %s is cheaper", c.Name, c, at, c.From)
			}
		}
		if strings.HasPrefix(c.Name, "shm pipelined -> single copy") && (c.Fit != 0 || c.Below != pathShmPipe) {
			t.Errorf("single copy never wins here: %+v", c)
		}
	}
	tu := rep.Choices.Tuning
	if tu.ShmEager != 24<<10 { // 25000 B rounded to whole KiB
		t.Errorf("shm eager %d, want 24 KiB", tu.ShmEager)
	}
	if tu.CMA != "auto" || tu.CMAMin != 0 {
		t.Errorf("cma %q from %d, want auto", tu.CMA, tu.CMAMin)
	}
	if tu.SockEager != 49<<10 {
		t.Errorf("sock eager %d, want 49 KiB (50000 B rounded)", tu.SockEager)
	}
	// T = (a_s + b_q·d)/(b_q − b_s) with s = pipelined, q = unix.
	if T := (2.3 + 0.3e-3*64) / (0.3e-3 - 0.02e-3); !near(rep.Seed.T, T, 1e-9) {
		t.Errorf("seed T %g, want %g", rep.Seed.T, T)
	}
	f, err := rep.TuningFile()
	if err != nil || f.Params != tu || f.Machine != "test" || len(f.Model) == 0 {
		t.Errorf("tuning file %+v, %v", f, err)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"shm-eager", "T = ", "shm_eager 24 KiB", "cma auto"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}

func TestModelPathsForceOneProtocol(t *testing.T) {
	for _, p := range modelPaths(4 << 20) {
		env := strings.Join(p.Env, " ")
		switch {
		case p.Name == pathShmEager && !strings.Contains(env, "GORUN_SHM_EAGER=4194304"):
			t.Errorf("%s: %s", p.Name, env)
		case strings.HasPrefix(p.Name, "shm") && p.Name != pathShmEager && !strings.Contains(env, "GORUN_SHM_EAGER=1 "):
			t.Errorf("%s: %s", p.Name, env)
		case (p.Name == pathUnix || p.Name == pathTCP) && p.MaxSize != transport.MaxEager:
			t.Errorf("%s goes up to %d", p.Name, p.MaxSize)
		}
	}
}
