package bench

import (
	"errors"
	"fmt"
	"math"
)

// lineFit is a straight line L(s) = A + B·s fitted by weighted least squares, with its
// uncertainty: the reference text's latency model of one path, A the fixed cost (µs) and B
// the cost per byte (µs/B).
type lineFit struct {
	A    float64 `json:"a_us"`
	B    float64 `json:"b_us_per_byte"`
	SEA  float64 `json:"se_a_us"`          // standard error of A
	SEB  float64 `json:"se_b_us_per_byte"` // standard error of B
	R2   float64 `json:"r2"`               // weighted coefficient of determination
	N    int     `json:"n"`                // points
	MinS float64 `json:"min_size"`         // the sizes fitted
	MaxS float64 `json:"max_size"`
}

// at is the fitted latency at size s.
func (f lineFit) at(s float64) float64 { return f.A + f.B*s }

// gbps is the bandwidth the slope implies, 1/B, in GB/s (10^9 B/s); 0 if B ≤ 0.
func (f lineFit) gbps() float64 {
	if f.B <= 0 {
		return 0
	}
	return 1e-3 / f.B
}

func (f lineFit) String() string {
	return fmt.Sprintf("L(s) = %.3f(±%.3f) µs + s × %.4f(±%.4f) ns/B, R² %.4f, %d points",
		f.A, f.SEA, f.B*1e3, f.SEB*1e3, f.R2, f.N)
}

// fitLine fits y = A + B·x minimizing Σ wᵢ(yᵢ − A − B·xᵢ)². A nil w weighs every point 1.
// The standard errors take the weighted residual variance as the noise scale (wᵢ are relative
// precisions), so they are meaningful with either choice. It needs three or more points with
// at least two distinct x.
func fitLine(x, y, w []float64) (lineFit, error) {
	n := len(x)
	if len(y) != n || (w != nil && len(w) != n) {
		return lineFit{}, errors.New("fit: x, y and w differ in length")
	}
	if n < 3 {
		return lineFit{}, fmt.Errorf("fit: %d points, need at least 3", n)
	}
	weight := func(i int) float64 {
		if w == nil {
			return 1
		}
		return w[i]
	}
	// Centred sums keep the numbers small when x spans bytes to megabytes.
	var sw, sx, sy float64
	for i := range n {
		sw += weight(i)
		sx += weight(i) * x[i]
		sy += weight(i) * y[i]
	}
	if !(sw > 0) {
		return lineFit{}, errors.New("fit: weights sum to zero")
	}
	mx, my := sx/sw, sy/sw
	var sxx, sxy, syy float64
	for i := range n {
		dx, dy := x[i]-mx, y[i]-my
		sxx += weight(i) * dx * dx
		sxy += weight(i) * dx * dy
		syy += weight(i) * dy * dy
	}
	if sxx == 0 {
		return lineFit{}, errors.New("fit: every point has the same size")
	}
	f := lineFit{B: sxy / sxx, N: n, MinS: x[0], MaxS: x[0]}
	f.A = my - f.B*mx
	var rss float64
	for i := range n {
		r := y[i] - f.at(x[i])
		rss += weight(i) * r * r
		f.MinS, f.MaxS = math.Min(f.MinS, x[i]), math.Max(f.MaxS, x[i])
	}
	sigma2 := rss / float64(n-2)
	f.SEB = math.Sqrt(sigma2 / sxx)
	f.SEA = math.Sqrt(sigma2 * (1/sw + mx*mx/sxx))
	f.R2 = 1
	if syy > 0 {
		f.R2 = 1 - rss/syy
	}
	return f, nil
}

// fitLatency fits latency (µs) against size (bytes) with weights 1/L², i.e. it minimizes the
// relative error: the sizes span six decades, and unweighted least squares would let the
// largest sizes decide the intercept alone.
func fitLatency(sizes, lat []float64) (lineFit, error) {
	w := make([]float64, len(lat))
	for i, l := range lat {
		if !(l > 0) {
			return lineFit{}, fmt.Errorf("fit: latency %g at %g bytes", l, sizes[i])
		}
		w[i] = 1 / (l * l)
	}
	return fitLine(sizes, lat, w)
}

// crossover is the size where line g becomes cheaper than line f: the s > 0 with
// f.at(s) = g.at(s) and f steeper than g. ok is false when g never overtakes f (it is cheaper
// everywhere, or dearer everywhere).
func crossover(f, g lineFit) (s float64, ok bool) {
	if f.B <= g.B {
		return 0, false
	}
	s = (g.A - f.A) / (f.B - g.B)
	return s, s > 0 && !math.IsInf(s, 0)
}

// seedThreshold is the reference text's threshold between a message queue q (L_q = a_q + b_q·s)
// and shared memory s that notifies through the queue with a control message of d bytes
// (L_s = a_s + b_s·s + a_q + b_q·d): T = (a_s + b_q·d)/(b_q − b_s). Messages up to T go faster
// through the queue. ok is false when b_q ≤ b_s (shared memory never catches up).
func seedThreshold(aS, bS, bQ, d float64) (t float64, ok bool) {
	if bQ <= bS {
		return 0, false
	}
	return (aS + bQ*d) / (bQ - bS), true
}
