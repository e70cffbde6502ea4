package bench

import (
	"encoding/json"
	"fmt"

	"github.com/gorun-hpc/gorun/transport"
	"github.com/gorun-hpc/gorun/transport/shm"
	"github.com/gorun-hpc/gorun/transport/sock"
	"github.com/gorun-hpc/gorun/tuning"
)

// choices are the thresholds the model picks, each with its reason. Zero fields of Tuning are
// left to the built-in defaults.
type choices struct {
	Tuning  tuning.Params `json:"tuning"`
	Reasons []string      `json:"reasons"`
}

// Bounds on what the model writes: an eager message occupies a ring record, so the shm eager
// limit stays small enough for a ring of a few MiB; sockets never go above the frame limit.
const (
	minShmEager  = 256
	maxShmEager  = 1 << 20
	minSockEager = 1 << 10
)

// choose picks the thresholds where the fitted lines cross. The medians' crossover is reported
// beside it but not used: one noisy size can move it a long way.
func choose(r *ModelReport) choices {
	var c choices
	c.shmEager(r)
	c.cma(r)
	c.sockEager(r)
	return c
}

// crossing returns the comparison from → to and the size where to overtakes from: where the
// fitted lines cross with from cheaper below (0 if they do not).
func (r *ModelReport) crossing(from, to string) (crossoverInfo, float64, bool) {
	for _, x := range r.Crossovers {
		if x.From != from || x.To != to {
			continue
		}
		if x.Fit > 0 && x.Below == from {
			return x, x.Fit, true
		}
		return x, 0, true
	}
	return crossoverInfo{}, 0, false
}

func (c *choices) shmEager(r *ModelReport) {
	x, at, ok := r.crossing(pathShmEager, pathShmPipe)
	if !ok {
		c.Reasons = append(c.Reasons, "shm_eager: not measured, built-in default kept")
		return
	}
	eager, how := at, "the fitted lines cross"
	if at == 0 {
		eager, how = maxShmEager, x.Note
		if x.Below == pathShmPipe {
			eager = minShmEager
		}
	}
	unit := 64 // a cache line; whole KiB from 4 KiB up, so the limit reads well
	if eager >= 4096 {
		unit = 1024
	}
	n := min(max(roundTo(eager, unit), minShmEager), maxShmEager)
	c.Tuning.ShmEager = n
	c.Reasons = append(c.Reasons, fmt.Sprintf("shm_eager %s: eager -> pipelined at %s (%s)", sizeText(float64(n)), sizeText(eager), how))
	// A ring holds records of up to half its size.
	ring := shm.DefaultRingBytes
	for ring/2 < n+4096 {
		ring *= 2
	}
	if ring != shm.DefaultRingBytes {
		c.Tuning.ShmRing = ring
		c.Reasons = append(c.Reasons, fmt.Sprintf("shm_ring %s: the ring must hold a record of %s", sizeText(float64(ring)), sizeText(float64(n))))
	}
}

func (c *choices) cma(r *ModelReport) {
	x, at, ok := r.crossing(pathShmPipe, pathShmCMA)
	switch {
	case !ok:
		c.Reasons = append(c.Reasons, "cma: not measured, built-in default kept")
	case at > 0:
		c.Tuning.CMA = "on"
		c.Tuning.CMAMin = max(roundTo(at, 4096), 4096)
		c.Reasons = append(c.Reasons, fmt.Sprintf("cma on from %s: single copy overtakes the pipelined copy at %s",
			sizeText(float64(c.Tuning.CMAMin)), sizeText(at)))
	default:
		c.Tuning.CMA = "auto"
		c.Reasons = append(c.Reasons, fmt.Sprintf("cma auto: on a node with a CPU per rank %s; single copy stays for oversubscribed nodes, where the pipelined copy needs both ranks running", x.Note))
	}
}

func (c *choices) sockEager(r *ModelReport) {
	x, at, ok := r.crossing(pathTCP, pathTCPRndv)
	switch {
	case !ok:
		c.Reasons = append(c.Reasons, "sock_eager: not measured, built-in default kept")
	case at > 0:
		n := min(max(roundTo(at, 1024), minSockEager), transport.MaxEager)
		c.Tuning.SockEager = n
		c.Reasons = append(c.Reasons, fmt.Sprintf("sock_eager %s: tcp eager -> rendezvous at %s (the fitted lines cross)", sizeText(float64(n)), sizeText(at)))
	default:
		c.Reasons = append(c.Reasons, fmt.Sprintf("sock_eager: %s; the built-in %s stays, bounding what an unexpected message can take from the receiver's memory",
			x.Note, sizeText(sock.DefaultEagerLimit)))
	}
}

func roundTo(v float64, unit int) int {
	return int(v/float64(unit)+0.5) * unit
}

// TuningFile is the tuning file for the report: the chosen thresholds, with the whole report
// kept as the model.
func (r *ModelReport) TuningFile() (tuning.File, error) {
	model, err := json.Marshal(r)
	if err != nil {
		return tuning.File{}, err
	}
	return tuning.File{Machine: r.Machine, Measured: r.Measured, Params: r.Choices.Tuning, Model: model}, nil
}
