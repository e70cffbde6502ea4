package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// series is one line of a plot: y against message size, optionally with its fitted model,
// drawn dashed in the same colour.
type series struct {
	Label string
	X, Y  []float64
	Fit   *lineFit
}

// marker is a vertical line at a message size (a crossover, a threshold).
type marker struct {
	X     float64
	Label string
}

// figure is a log-log plot against message size.
type figure struct {
	Title, YLabel string
	Series        []series
	Markers       []marker
}

// Save draws f to file; the extension chooses the format (.svg, .png, .pdf, .eps).
func (f *figure) Save(file string) (err error) {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".svg", ".png", ".pdf", ".eps", ".jpg", ".jpeg", ".tif", ".tiff":
	default:
		return fmt.Errorf("plot %s: want a .svg, .png or .pdf file", file)
	}
	// The plotting library panics on some degenerate input (log of zero); that is an error
	// here, not a crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plot %s: %v", file, r)
		}
	}()
	p, err := f.build()
	if err != nil {
		return fmt.Errorf("plot %s: %w", file, err)
	}
	return p.Save(9*vg.Inch, 6*vg.Inch, file)
}

func (f *figure) build() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = f.Title
	p.X.Label.Text = "message size (bytes)"
	p.Y.Label.Text = f.YLabel
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = sizeTicks{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for i, s := range f.Series {
		pts := positive(s.X, s.Y)
		if len(pts) == 0 {
			continue
		}
		line, dots, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color, dots.Color, dots.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
		p.Add(line, dots)
		for _, pt := range pts {
			ylo, yhi = math.Min(ylo, pt.Y), math.Max(yhi, pt.Y)
		}
		if s.Fit == nil {
			p.Legend.Add(s.Label, line, dots)
			continue
		}
		fl, err := fittedLine(*s.Fit, i, pts)
		if err != nil {
			return nil, err
		}
		p.Add(fl)
		p.Legend.Add(fmt.Sprintf("%s   fit %.2f µs + %.3f ns/B (R² %.3f)", s.Label, s.Fit.A, s.Fit.B*1e3, s.Fit.R2), line, dots, fl)
	}
	if math.IsInf(ylo, 0) {
		return nil, fmt.Errorf("no positive data to draw")
	}
	// Room above the data for the legend: the data take the lower part of the axis.
	rows := float64(len(f.Series) + 1)
	p.Y.Min, p.Y.Max = ylo/1.2, math.Exp(math.Log(ylo)+(math.Log(yhi*1.2)-math.Log(ylo))*(1+rows*0.06))
	for i, m := range f.Markers {
		if err := addMarker(p, m, i, ylo, yhi); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// positive keeps the points a log-log plot can show.
func positive(x, y []float64) plotter.XYs {
	var pts plotter.XYs
	for i := range min(len(x), len(y)) {
		if x[i] > 0 && y[i] > 0 && !math.IsInf(y[i], 0) {
			pts = append(pts, plotter.XY{X: x[i], Y: y[i]})
		}
	}
	return pts
}

// fittedLine is the fitted line over the series' sizes, sampled evenly in log space, dashed in
// the series' colour.
func fittedLine(fit lineFit, i int, pts plotter.XYs) (*plotter.Line, error) {
	lo, hi := pts[0].X, pts[len(pts)-1].X
	var xy plotter.XYs
	for k := range 65 {
		x := lo * math.Pow(hi/lo, float64(k)/64)
		if y := fit.at(x); y > 0 {
			xy = append(xy, plotter.XY{X: x, Y: y})
		}
	}
	if len(xy) == 0 {
		xy = plotter.XYs{pts[0]}
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, err
	}
	l.Color, l.Dashes, l.Width = plotutil.Color(i), []vg.Length{vg.Points(6), vg.Points(3)}, vg.Points(1)
	return l, nil
}

// addMarker draws a grey vertical line at m.X over the data, its label at the bottom, the
// labels of successive markers staggered so that they do not overlap.
func addMarker(p *plot.Plot, m marker, i int, ylo, yhi float64) error {
	if !(m.X > 0) {
		return nil
	}
	l, err := plotter.NewLine(plotter.XYs{{X: m.X, Y: ylo}, {X: m.X, Y: yhi}})
	if err != nil {
		return err
	}
	l.Color = color.Gray{Y: 110}
	l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: m.X, Y: ylo}}, Labels: []string{m.Label}})
	if err != nil {
		return err
	}
	lab.Offset = vg.Point{X: vg.Points(3), Y: vg.Points(float64(2 + 11*i))}
	p.Add(l, lab)
	return nil
}

// sizeTicks labels a log axis of bytes with powers of two: B, KiB, MiB.
type sizeTicks struct{}

func (sizeTicks) Ticks(lo, hi float64) []plot.Tick {
	lo = math.Max(lo, 1)
	first, last := int(math.Floor(math.Log2(lo))), int(math.Ceil(math.Log2(hi)))
	step := 1
	for (last-first)/step > 10 {
		step *= 2
	}
	var ticks []plot.Tick
	for e := first; e <= last; e++ {
		v := math.Exp2(float64(e))
		if v < lo || v > hi {
			continue
		}
		label := ""
		if e%step == 0 {
			label = sizeText(v)
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}

// resultSeries is the first value column of r against size, labelled label.
func resultSeries(r *Result, label string) series {
	s := series{Label: label}
	for _, row := range r.Rows {
		if len(row.Values) > 0 {
			s.X, s.Y = append(s.X, float64(row.Size)), append(s.Y, row.Values[0])
		}
	}
	return s
}

// ResultsFigure plots results side by side: the first column of each against size. With fit,
// each series gets its L(s) = a + b·s line (for latency results).
func ResultsFigure(title string, results []*Result, fit bool) (*figure, error) {
	if len(results) == 0 {
		return nil, fmt.Errorf("nothing to plot")
	}
	f := &figure{Title: title}
	if len(results[0].Columns) > 0 {
		f.YLabel = results[0].Columns[0]
	}
	for _, r := range results {
		label := r.Label
		if label == "" {
			label = fmt.Sprintf("%s %s", r.Benchmark, r.Transport)
		}
		s := resultSeries(r, label)
		if fit {
			pts := positive(s.X, s.Y)
			var x, y []float64
			for _, p := range pts {
				x, y = append(x, p.X), append(y, p.Y)
			}
			fl, err := fitLatency(x, y)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", label, err)
			}
			s.Fit = &fl
		}
		f.Series = append(f.Series, s)
	}
	return f, nil
}

// Figure plots the model: the medians of every path with their fitted lines, and the
// thresholds chosen, marked.
func (r *ModelReport) Figure() *figure {
	f := &figure{Title: "gorun one-way latency by path: " + r.Machine, YLabel: "one-way latency (µs)"}
	for _, p := range r.Paths {
		x := make([]float64, len(p.Sizes))
		for i, s := range p.Sizes {
			x[i] = float64(s)
		}
		fit := p.Fit
		f.Series = append(f.Series, series{Label: p.Name, X: x, Y: p.Latency, Fit: &fit})
	}
	t := r.Choices.Tuning
	if t.ShmEager > 0 {
		f.Markers = append(f.Markers, marker{float64(t.ShmEager), "shm eager limit"})
	}
	if t.CMA == "on" {
		f.Markers = append(f.Markers, marker{float64(t.CMAMin), "single copy from"})
	}
	if t.SockEager > 0 {
		f.Markers = append(f.Markers, marker{float64(t.SockEager), "socket eager limit"})
	}
	if r.Seed.T > 0 {
		f.Markers = append(f.Markers, marker{r.Seed.T, "seed T"})
	}
	return f
}
