package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteText prints the report: an OSU-layout table of the median latency per path, then the
// fits, the crossovers, the reference text's threshold and the chosen tuning.
func (r *ModelReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# gorun-bench model: one-way latency L(s) = a + b*s per path, 2 ranks\n")
	fmt.Fprintf(&b, "# machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "# median of %d runs per path, %d iterations per size up to 8 KiB\n", r.Repeat, r.Iterations)
	r.writeTable(&b)
	b.WriteString("#\n# fits (weighted least squares, weights 1/L^2; ± is one standard error)\n")
	fmt.Fprintf(&b, "# %-16s %10s %8s %11s %9s %9s %8s  %s\n", "path", "a (us)", "±", "b (ns/B)", "±", "GB/s", "R^2", "sizes")
	for _, p := range r.Paths {
		f := p.Fit
		fmt.Fprintf(&b, "# %-16s %10.3f %8.3f %11.5f %9.5f %9.2f %8.4f  %s - %s\n", p.Name, f.A, f.SEA, f.B*1e3, f.SEB*1e3,
			f.gbps(), f.R2, sizeText(f.MinS), sizeText(f.MaxS))
	}
	b.WriteString("#\n# crossovers: where the fitted lines cross [from which size the second path's medians stay lower]\n")
	for _, c := range r.Crossovers {
		fit, meas := "none", "none"
		if c.Fit > 0 {
			fit = sizeText(c.Fit)
		}
		if c.Measured > 0 {
			meas = sizeText(float64(c.Measured))
		}
		fmt.Fprintf(&b, "# %-46s %10s [%s]  %s\n", c.Name, fit, meas, c.Note)
	}
	s := r.Seed
	b.WriteString("#\n# reference text: T = (a_s + b_q*d)/(b_q - b_s)\n")
	fmt.Fprintf(&b, "#   q = %s, s = %s, d = %d B: ", s.Queue, s.Shared, s.D)
	if s.T > 0 {
		fmt.Fprintf(&b, "T = %s\n", sizeText(s.T))
	} else {
		b.WriteString("no threshold\n")
	}
	fmt.Fprintf(&b, "#   %s\n", s.Note)
	b.WriteString("#\n# chosen tuning\n")
	for _, why := range r.Choices.Reasons {
		fmt.Fprintf(&b, "#   %s\n", why)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTable prints the medians, one column per path, in OSU's layout.
func (r *ModelReport) writeTable(b *strings.Builder) {
	var all []int
	for _, p := range r.Paths {
		all = append(all, p.Sizes...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	widths := make([]int, len(r.Paths))
	fmt.Fprintf(b, "%-*s", sizeWidth, "# Size")
	for i, p := range r.Paths {
		name := p.Name + " (us)"
		widths[i] = max(fieldWidth, len(name)+2)
		fmt.Fprintf(b, "%*s", widths[i], name)
	}
	b.WriteString("\n")
	for _, s := range all {
		fmt.Fprintf(b, "%-*d", sizeWidth, s)
		for i, p := range r.Paths {
			if j := slices.Index(p.Sizes, s); j >= 0 {
				fmt.Fprintf(b, "%*.2f", widths[i], p.Latency[j])
			} else {
				fmt.Fprintf(b, "%*s", widths[i], "-")
			}
		}
		b.WriteString("\n")
	}
}
