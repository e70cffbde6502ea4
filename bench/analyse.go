package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// ModelReport is what Model found: per path the median latency by size and the fitted line,
// the crossovers between paths, the reference text's threshold, and the tuning chosen.
type ModelReport struct {
	Machine    string          `json:"machine"`
	Measured   time.Time       `json:"measured"`
	Repeat     int             `json:"repeat"`
	Iterations int             `json:"iterations"`
	Paths      []pathModel     `json:"paths"`
	Crossovers []crossoverInfo `json:"crossovers"`
	Seed       seedInfo        `json:"seed_threshold"`
	Choices    choices         `json:"choices"`
}

// pathModel is one path's measurements and fit.
type pathModel struct {
	modelPath
	Sizes   []int     `json:"sizes"`
	Latency []float64 `json:"latency_us"` // median over the runs, by size
	Spread  []float64 `json:"spread"`     // (max - min) / median over the runs, by size
	Fit     lineFit   `json:"fit"`
}

// crossoverInfo compares two paths: the size where their fitted lines cross (0: they do not,
// for any positive size) and which path is cheaper below it, and the crossover of the medians:
// the smallest measured size from which To stays cheaper than From (0: To is not cheaper at
// the largest size both measured).
type crossoverInfo struct {
	Name     string  `json:"name"`
	From     string  `json:"from"`
	To       string  `json:"to"`
	Fit      float64 `json:"fit_bytes"`
	Below    string  `json:"cheaper_below"` // the path cheaper below Fit, or at every size if Fit is 0
	Measured int     `json:"measured_bytes"`
	Note     string  `json:"note"`
}

// seedInfo is the reference text's T = (a_s + b_q·d)/(b_q − b_s) with q and s named.
type seedInfo struct {
	Queue, Shared string
	D             int     `json:"d_bytes"`
	T             float64 `json:"t_bytes"` // 0: b_q ≤ b_s, no threshold
	Note          string  `json:"note"`
}

// analyse turns the runs (by path, by repeat) into the report.
func analyse(cfg *ModelConfig, paths []modelPath, runs [][]*Result) (*ModelReport, error) {
	rep := &ModelReport{Machine: cfg.Machine, Measured: time.Now().UTC(), Repeat: cfg.Repeat, Iterations: cfg.Iterations}
	for i, p := range paths {
		pm, err := medians(p, runs[i])
		if err != nil {
			return nil, err
		}
		x := make([]float64, len(pm.Sizes))
		for j, s := range pm.Sizes {
			x[j] = float64(s)
		}
		if pm.Fit, err = fitLatency(x, pm.Latency); err != nil {
			return nil, fmt.Errorf("model: path %s: %w", p.Name, err)
		}
		rep.Paths = append(rep.Paths, pm)
	}
	rep.crossovers()
	rep.seed(cfg.NotifyBytes)
	rep.Choices = choose(rep)
	return rep, nil
}

// medians combines the runs of one path: by size, the median latency and the spread.
func medians(p modelPath, runs []*Result) (pathModel, error) {
	pm := pathModel{modelPath: p}
	bySize := map[int][]float64{}
	for _, r := range runs {
		sizes, lat, ok := r.column("Latency (us)")
		if !ok {
			return pm, fmt.Errorf("model: path %s: the result has no latency column", p.Name)
		}
		for j, s := range sizes {
			bySize[s] = append(bySize[s], lat[j])
		}
	}
	for s := range bySize {
		pm.Sizes = append(pm.Sizes, s)
	}
	slices.Sort(pm.Sizes)
	for _, s := range pm.Sizes {
		v := bySize[s]
		med := median(v)
		pm.Latency = append(pm.Latency, med)
		pm.Spread = append(pm.Spread, (slices.Max(v)-slices.Min(v))/med)
	}
	return pm, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (r *ModelReport) path(name string) *pathModel {
	i := slices.IndexFunc(r.Paths, func(p pathModel) bool { return p.Name == name })
	if i < 0 {
		return nil
	}
	return &r.Paths[i]
}

// crossoverPairs are the crossovers reported: protocol switches within a transport, then
// transports against each other.
var crossoverPairs = []struct{ name, from, to string }{
	{"shm eager -> pipelined (GORUN_SHM_EAGER)", pathShmEager, pathShmPipe},
	{"shm pipelined -> single copy (GORUN_CMA_MIN)", pathShmPipe, pathShmCMA},
	{"shm eager -> single copy", pathShmEager, pathShmCMA},
	{"tcp eager -> rendezvous (GORUN_EAGER_LIMIT)", pathTCP, pathTCPRndv},
	{"unix eager -> rendezvous", pathUnix, pathUnixRndv},
	{"unix -> shm eager", pathUnix, pathShmEager},
	{"unix -> shm pipelined", pathUnix, pathShmPipe},
	{"tcp -> shm eager", pathTCP, pathShmEager},
	{"tcp -> unix", pathTCP, pathUnix},
}

func (r *ModelReport) crossovers() {
	for _, c := range crossoverPairs {
		f, g := r.path(c.from), r.path(c.to)
		if f == nil || g == nil {
			continue
		}
		info := crossoverInfo{Name: c.name, From: c.from, To: c.to, Measured: measuredCrossover(f, g)}
		if s, ok := crossover(f.Fit, g.Fit); ok {
			info.Fit, info.Below = s, f.Name
			info.Note = fmt.Sprintf("%s is cheaper below %s, %s above", f.Name, sizeText(s), g.Name)
		} else if s, ok := crossover(g.Fit, f.Fit); ok {
			info.Fit, info.Below = s, g.Name
			info.Note = fmt.Sprintf("%s is cheaper below %s, %s above", g.Name, sizeText(s), f.Name)
		} else {
			info.Below = f.Name
			if g.Fit.at(1) < f.Fit.at(1) {
				info.Below = g.Name
			}
			info.Note = fmt.Sprintf("%s is cheaper at every size", info.Below)
		}
		if top := min(f.Fit.MaxS, g.Fit.MaxS); info.Fit > top {
			info.Note += fmt.Sprintf(" (beyond the %s measured)", sizeText(top))
		}
		r.Crossovers = append(r.Crossovers, info)
	}
}

// measuredCrossover is the smallest measured size from which g's median stays below f's; 0 if
// g is not cheaper at the largest common size.
func measuredCrossover(f, g *pathModel) int {
	at := 0
	for i, s := range f.Sizes {
		j := slices.Index(g.Sizes, s)
		if j < 0 {
			continue
		}
		switch {
		case g.Latency[j] < f.Latency[i] && at == 0:
			at = s
		case g.Latency[j] >= f.Latency[i]:
			at = 0
		}
	}
	return at
}

// seed applies the reference text's threshold with q = the Unix socket (the kernel-mediated
// message queue) and s = the shared-memory bulk path (pipelined), notified by a d-byte message.
func (r *ModelReport) seed(d int) {
	q, s := r.path(pathUnix), r.path(pathShmPipe)
	r.Seed = seedInfo{Queue: pathUnix, Shared: pathShmPipe, D: d}
	if q == nil || s == nil {
		r.Seed.Note = "needs the unix and shm-pipelined paths"
		return
	}
	t, ok := seedThreshold(s.Fit.A, s.Fit.B, q.Fit.B, float64(d))
	if !ok {
		r.Seed.Note = "b_q <= b_s: the queue is never slower per byte, no threshold"
		return
	}
	r.Seed.T = t
	r.Seed.Note = fmt.Sprintf("the text's hybrid (data in shared memory, a %d-byte notice through the socket) beats the socket alone above %s; "+
		"gorun notifies through the ring itself, so its shm paths are compared with the sockets directly in the crossovers above", d, sizeText(t))
	if math.IsInf(t, 0) || math.IsNaN(t) {
		r.Seed.T = 0
	}
}
