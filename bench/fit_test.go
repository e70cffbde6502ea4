package bench

import (
	"math"
	"math/rand/v2"
	"testing"
)

// logSizes are 8 B to 4 MiB, as the model measures.
func logSizes() []float64 {
	var x []float64
	for s := 8.0; s <= 4<<20; s *= 2 {
		x = append(x, s)
	}
	return x
}

func TestFitLineExact(t *testing.T) {
	const a, b = 0.35, 0.02e-3 // 0.35 µs + 0.02 ns/B (50 GB/s)
	x := logSizes()
	y := make([]float64, len(x))
	for i, s := range x {
		y[i] = a + b*s
	}
	for _, tc := range []struct {
		name string
		fit  func() (lineFit, error)
	}{
		{"unweighted", func() (lineFit, error) { return fitLine(x, y, nil) }},
		{"relative", func() (lineFit, error) { return fitLatency(x, y) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.fit()
			if err != nil {
				t.Fatal(err)
			}
			if !near(f.A, a, 1e-9) || !near(f.B, b, 1e-9) {
				t.Errorf("fit %v, want a %g b %g", f, a, b)
			}
			if f.R2 < 1-1e-12 || f.SEA > 1e-9 || f.SEB > 1e-12 || f.N != len(x) {
				t.Errorf("exact data: R² %g, SE %g %g, n %d", f.R2, f.SEA, f.SEB, f.N)
			}
			if f.MinS != 8 || f.MaxS != 4<<20 {
				t.Errorf("range %g..%g", f.MinS, f.MaxS)
			}
			if g := f.gbps(); !near(g, 50, 1e-6) {
				t.Errorf("GB/s %g, want 50", g)
			}
		})
	}
}

// With 5% multiplicative noise the weighted fit recovers a and b within a few standard
// errors, and the standard errors are of the size the noise implies.
func TestFitLatencyNoisy(t *testing.T) {
	const a, b = 4.0, 0.25e-3
	rng := rand.New(rand.NewPCG(1, 2))
	x := logSizes()
	for trial := range 20 {
		y := make([]float64, len(x))
		for i, s := range x {
			y[i] = (a + b*s) * (1 + 0.05*rng.NormFloat64())
		}
		f, err := fitLatency(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(f.A-a) > 5*f.SEA || math.Abs(f.B-b) > 5*f.SEB {
			t.Errorf("trial %d: %v, want a %g b %g within 5 SE", trial, f, a, b)
		}
		if f.SEA <= 0 || f.SEA > 0.1*a || f.SEB <= 0 || f.SEB > 0.1*b {
			t.Errorf("trial %d: standard errors %g, %g out of proportion to 5%% noise", trial, f.SEA, f.SEB)
		}
		if f.R2 < 0.9 {
			t.Errorf("trial %d: R² %g", trial, f.R2)
		}
	}
}

func TestFitLineErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		x, y, w []float64
	}{
		{"too few", []float64{1, 2}, []float64{1, 2}, nil},
		{"lengths", []float64{1, 2, 3}, []float64{1, 2}, nil},
		{"one size", []float64{4, 4, 4}, []float64{1, 2, 3}, nil},
		{"zero weights", []float64{1, 2, 3}, []float64{1, 2, 3}, []float64{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if f, err := fitLine(tc.x, tc.y, tc.w); err == nil {
				t.Errorf("FitLine = %v, want an error", f)
			}
		})
	}
	if _, err := fitLatency([]float64{1, 2, 3}, []float64{1, 0, 3}); err == nil {
		t.Error("FitLatency accepted a zero latency")
	}
}

func TestCrossover(t *testing.T) {
	eager := lineFit{A: 0.3, B: 0.1e-3} // cheap to start, 10 GB/s
	pipe := lineFit{A: 2.3, B: 0.02e-3} // dearer to start, 50 GB/s
	s, ok := crossover(eager, pipe)     // 2.0 µs / 0.08e-3 µs/B = 25000 B
	if !ok || !near(s, 25000, 1e-9) || !near(eager.at(s), pipe.at(s), 1e-12) {
		t.Errorf("Crossover = %g, %v; want 25000", s, ok)
	}
	if s, ok := crossover(pipe, eager); ok {
		t.Errorf("the flatter line never gets overtaken, got %g", s)
	}
	if s, ok := crossover(eager, lineFit{A: 0.1, B: 0.01e-3}); ok {
		t.Errorf("a line cheaper everywhere has no crossover, got %g", s)
	}
}

// The reference text's threshold: L_q = a_q + b_q·s, L_s = a_s + b_s·s + a_q + b_q·d; they meet
// at T = (a_s + b_q·d)/(b_q − b_s), whatever a_q is.
func TestSeedThreshold(t *testing.T) {
	aS, bS, aQ, bQ, d := 1.5, 0.02e-3, 3.0, 0.5e-3, 64.0
	T, ok := seedThreshold(aS, bS, bQ, d)
	if !ok {
		t.Fatal("no threshold")
	}
	want := (aS + bQ*d) / (bQ - bS)
	queue := aQ + bQ*T
	shared := aS + bS*T + aQ + bQ*d
	if !near(T, want, 1e-12) || !near(queue, shared, 1e-9) {
		t.Errorf("T = %g (want %g): L_q(T) %g, L_s(T) %g", T, want, queue, shared)
	}
	if _, ok := seedThreshold(aS, bQ, bQ, d); ok {
		t.Error("equal per-byte costs give no threshold")
	}
}

func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}
