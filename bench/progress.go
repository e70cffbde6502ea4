package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Progress shows what a long run is doing on one line of a terminal: the step being measured
// and an estimate of the time left. It stays silent for the first few seconds, so short runs
// print nothing. A nil *Progress does nothing. Not safe for concurrent use: one goroutine
// (rank 0's, or a driver's) owns it.
type Progress struct {
	w     io.Writer
	tty   bool          // redraw one line; else print a line per update
	quiet time.Duration // nothing before this much time has passed
	every time.Duration // at most one update per this on a non-terminal

	start, last time.Time
	total, done float64 // work units, see begin and step
	pending     float64 // weight of the step in progress
	shown       bool    // a line is on screen
}

// NewProgress returns a Progress on f for mode "auto" (only if f is a terminal), "on" (a
// terminal redraws one line, anything else gets a line every few seconds) or "off" (nil).
func NewProgress(f *os.File, mode string) (*Progress, error) {
	tty := isTerminal(f)
	switch mode {
	case "off":
		return nil, nil
	case "auto", "":
		if !tty {
			return nil, nil
		}
	case "on":
	default:
		return nil, fmt.Errorf("progress %q: want auto, on or off", mode)
	}
	return &Progress{w: f, tty: tty, quiet: 3 * time.Second, every: 2 * time.Second}, nil
}

func isTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// begin starts a run of total work units (any unit: the estimate is proportional).
func (p *Progress) begin(total float64) {
	if p == nil {
		return
	}
	p.start, p.total, p.done, p.pending = time.Now(), total, 0, 0
}

// step marks the previous step done and starts one of weight work units, described by label.
func (p *Progress) step(label string, weight float64) {
	if p == nil {
		return
	}
	p.done += p.pending
	p.pending = weight
	now := time.Now()
	elapsed := now.Sub(p.start)
	if elapsed < p.quiet || (!p.tty && now.Sub(p.last) < p.every) {
		return
	}
	p.last = now
	eta := "?"
	if p.done > 0 && p.total > p.done {
		eta = (time.Duration(float64(elapsed) * (p.total - p.done) / p.done)).Round(time.Second).String()
	}
	line := fmt.Sprintf("%s  [%.0f%%, %s elapsed, about %s left]", label, 100*p.done/p.total, elapsed.Round(time.Second), eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.shown = true
}

// end clears the line.
func (p *Progress) end() {
	if p == nil || !p.shown {
		return
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	p.shown = false
}
