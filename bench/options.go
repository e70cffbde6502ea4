package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Options are the settings of a rank benchmark, OSU's flags. The zero value means OSU 7's
// defaults for the benchmark.
type Options struct {
	// MinSize and MaxSize bound the message sizes (-m min:max); sizes are 0 (if MinSize is 0),
	// then the powers of two from max(MinSize, 1) to MaxSize. Zero MaxSize: the benchmark's
	// default (4 MiB point-to-point, 1 MiB for multi_lat and the collectives).
	MinSize, MaxSize int
	// Iterations and Warmup (-i, -x) are the timed and untimed repetitions for sizes up to
	// 8 KiB; larger sizes get OSU's smaller counts scaled in proportion. Zero: OSU's defaults
	// (latency 10000/100, bw 100/10, collectives 1000/100; above 8 KiB 1000/10, 20/2, 100/10).
	Iterations, Warmup int
	// Window is the number of messages in flight per iteration of bw, bibw and mbw_mr (-W);
	// zero: 64.
	Window int
	// Interval is the gap between the messages of stream_lat; zero: 10µs.
	Interval time.Duration
	// WarmPass runs every size, largest first, untimed (its warm-up count) before the measured
	// pass, so that memory a path touches for the first time (the pages of a large ring, fresh
	// socket buffers) is not charged to the small sizes. OSU has no such pass; the model uses it.
	WarmPass bool
	// Text, if set, receives OSU's table on rank 0 as it is measured.
	Text io.Writer
	// Progress, if set, is told each size as it is measured (rank 0 only).
	Progress *Progress
	// Transport is what the ranks were asked to use, for the header ("auto" if empty).
	Transport string
	// Notes are extra header lines.
	Notes []string
}

// largeMessage is OSU's LARGE_MESSAGE_SIZE: above it, fewer iterations.
const largeMessage = 8192

// defaultWindow is OSU's WINDOW_SIZE_LARGE.
const defaultWindow = 64

// counts are a benchmark's OSU defaults: iterations and warm-up for small and large sizes.
type counts struct{ iters, skip, itersLarge, skipLarge int }

var (
	latCounts  = counts{10000, 100, 1000, 10} // LAT_LOOP_SMALL, ...
	bwCounts   = counts{100, 10, 20, 2}       // BW_LOOP_SMALL, ...
	collCounts = counts{1000, 100, 100, 10}   // COLL_LOOP_SMALL, ...
)

// iterations returns the timed and warm-up repetitions for a message of size bytes.
func (o *Options) iterations(c counts, size int) (iters, warmup int) {
	iters, warmup = c.iters, c.skip
	if o.Iterations > 0 {
		iters = o.Iterations
	}
	if o.Warmup > 0 {
		warmup = o.Warmup
	}
	if size > largeMessage {
		iters = scaled(iters, c.itersLarge, c.iters)
		warmup = scaled(warmup, c.skipLarge, c.skip)
	}
	return iters, warmup
}

// scaled is n·num/den, at least 1 when n is.
func scaled(n, num, den int) int {
	if n <= 0 {
		return 0
	}
	return max(1, n*num/den)
}

// sizes lists the message sizes from lo to hi: 0 if lo is 0, then powers of two.
func sizes(lo, hi int) []int {
	var out []int
	if lo == 0 {
		out = append(out, 0)
	}
	for s := 1; s <= hi && s > 0; s *= 2 {
		if s >= lo {
			out = append(out, s)
		}
	}
	return out
}

// ParseSizeRange parses -m: "max" or "min:max" (or "min:"), each a number of bytes with an
// optional K, M or G suffix (binary: 4K = 4096).
func ParseSizeRange(s string) (lo, hi int, err error) {
	a, b, hasColon := strings.Cut(s, ":")
	if !hasColon {
		hi, err = parseSize(a)
		return 0, hi, err
	}
	if a != "" {
		if lo, err = parseSize(a); err != nil {
			return 0, 0, err
		}
	}
	if b != "" {
		if hi, err = parseSize(b); err != nil {
			return 0, 0, err
		}
	}
	if hi != 0 && lo > hi {
		return 0, 0, fmt.Errorf("size range %q: min above max", s)
	}
	return lo, hi, nil
}

// parseSize parses a number of bytes with an optional K, M or G suffix (also KiB, MiB, GiB).
func parseSize(s string) (int, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "IB"), "B")
	shift := 0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		}
		if shift > 0 {
			t = t[:n-1]
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > (1<<40)>>shift {
		return 0, fmt.Errorf("size %q: want a number of bytes, like 4096 or 4K", s)
	}
	return n << shift, nil
}

// sizeText writes a size the short way: 512 B, 4 KiB, 1 MiB, 1.5 MiB.
func sizeText(n float64) string {
	switch {
	case n >= 1<<30:
		return trimFloat(n/(1<<30)) + " GiB"
	case n >= 1<<20:
		return trimFloat(n/(1<<20)) + " MiB"
	case n >= 1<<10:
		return trimFloat(n/(1<<10)) + " KiB"
	}
	return trimFloat(n) + " B"
}

func trimFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}
