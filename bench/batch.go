package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Batching in shared memory, after the reference text: the producer gathers messages until
// an aggregation limit A or a flush timeout τ and rings the doorbell once per batch. The
// message rate should rise (the synchronization cost is shared by a batch) and a message of a
// paced stream should wait about τ/2 longer. The transport reads the two settings from
// GORUN_SHM_BATCH (A) and GORUN_SHM_FLUSH (τ, a Go duration) at Init.

// batchSetting is one configuration: Limit empty means batching off.
type batchSetting struct {
	Limit string        `json:"limit"` // A, as GORUN_SHM_BATCH takes it
	Flush time.Duration `json:"flush"` // τ
}

func (s batchSetting) String() string {
	if s.Limit == "" {
		return "off"
	}
	return fmt.Sprintf("A=%s tau=%v", s.Limit, s.Flush)
}

// env returns the variables that select s. "Off" sets them empty, which the ranks read as
// unset whatever the driver's own environment holds.
func (s batchSetting) env() []string {
	flush := ""
	if s.Limit != "" && s.Flush > 0 {
		flush = s.Flush.String()
	}
	return []string{"GORUN_SHM_BATCH=" + s.Limit, "GORUN_SHM_FLUSH=" + flush}
}

// ParseBatchSetting parses "off" or "A/τ", e.g. "16/20us".
func ParseBatchSetting(v string) (batchSetting, error) {
	if v == "off" || v == "" {
		return batchSetting{}, nil
	}
	a, t, ok := strings.Cut(v, "/")
	d, err := time.ParseDuration(t)
	if !ok || a == "" || err != nil || d <= 0 {
		return batchSetting{}, fmt.Errorf("batch setting %q: want off or A/tau, like 16/20us", v)
	}
	return batchSetting{Limit: a, Flush: d}, nil
}

// BatchConfig says what Batching compares. Zero fields mean the defaults.
type BatchConfig struct {
	Program   string         // the gorun-bench executable the ranks run (required)
	Transport string         // default shm
	Settings  []batchSetting // default: off, 16/20µs, 64/100µs
	Size      int            // message size, default 8
	// Iterations of mbw_mr (windows of 64) and messages of stream_lat; default OSU's.
	RateIterations, StreamMessages int
	Interval                       time.Duration // between stream messages, default 10µs
	Repeat                         int           // runs per setting, median taken; default 3
	JobTimeout                     time.Duration // default 2 minutes
	Stderr                         io.Writer
	Progress                       *Progress
}

// batchRow is the outcome of one setting.
type batchRow struct {
	Setting  batchSetting `json:"setting"`
	Rate     float64      `json:"messages_per_s"`
	MBps     float64      `json:"mb_per_s"`
	Latency  float64      `json:"stream_latency_us"`
	Added    float64      `json:"added_latency_us"`  // against the first setting
	Expected float64      `json:"expected_added_us"` // expectedWait
}

// batchReport is what Batching measured.
type batchReport struct {
	Transport string        `json:"transport"`
	Size      int           `json:"size"`
	Interval  time.Duration `json:"interval"`
	Rows      []batchRow    `json:"rows"`
}

func (cfg *BatchConfig) fill() error {
	if cfg.Program == "" {
		return errors.New("batch: no program to run as ranks")
	}
	if cfg.Transport == "" {
		cfg.Transport = "shm"
	}
	if len(cfg.Settings) == 0 {
		cfg.Settings = []batchSetting{{}, {Limit: "16", Flush: 20 * time.Microsecond}, {Limit: "64", Flush: 100 * time.Microsecond}}
	}
	if cfg.Size == 0 {
		cfg.Size = 8
	}
	if cfg.Interval == 0 {
		cfg.Interval = defaultInterval
	}
	if cfg.Repeat == 0 {
		cfg.Repeat = 3
	}
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = 2 * time.Minute
	}
	return nil
}

// Batching runs mbw_mr (message rate) and stream_lat (latency of a paced stream) for each
// setting on two ranks, the settings taking turns, and reports the medians.
func Batching(ctx context.Context, cfg BatchConfig) (*batchReport, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	rates := make([][]float64, len(cfg.Settings))
	mbs := make([][]float64, len(cfg.Settings))
	lats := make([][]float64, len(cfg.Settings))
	cfg.Progress.begin(float64(cfg.Repeat * len(cfg.Settings)))
	for r := range cfg.Repeat {
		for i, s := range cfg.Settings {
			cfg.Progress.step(fmt.Sprintf("batch: %s, run %d of %d", s, r+1, cfg.Repeat), 1)
			mr, err := cfg.job(ctx, s, "mbw_mr", cfg.RateIterations)
			if err != nil {
				return nil, err
			}
			sl, err := cfg.job(ctx, s, "stream_lat", cfg.StreamMessages, "--interval", cfg.Interval.String())
			if err != nil {
				return nil, err
			}
			if len(mr.Rows) == 0 || len(mr.Rows[0].Values) < 2 || len(sl.Rows) == 0 || len(sl.Rows[0].Values) < 1 {
				return nil, fmt.Errorf("batch %s: a job printed no result row", s)
			}
			mbs[i] = append(mbs[i], mr.Rows[0].Values[0])
			rates[i] = append(rates[i], mr.Rows[0].Values[1])
			lats[i] = append(lats[i], sl.Rows[0].Values[0])
		}
	}
	cfg.Progress.end()
	rep := &batchReport{Transport: cfg.Transport, Size: cfg.Size, Interval: cfg.Interval}
	for i, s := range cfg.Settings {
		row := batchRow{Setting: s, Rate: median(rates[i]), MBps: median(mbs[i]), Latency: median(lats[i]),
			Expected: micros(expectedWait(s, cfg.Interval))}
		row.Added = row.Latency - median(lats[0])
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

// expectedWait is the mean time a message of a stream with one message every p waits in a
// batch: a batch opens with a message and closes after τ or at the A-th message, whichever
// comes first; with k messages in it, evenly spaced, they wait on average τ − p(k−1)/2 (closed
// by the timeout) or p(A−1)/2 (closed by the limit). With many messages per batch this is the
// reference text's τ/2.
func expectedWait(s batchSetting, p time.Duration) time.Duration {
	if s.Limit == "" || s.Flush <= 0 || p <= 0 {
		return 0
	}
	k := int((s.Flush + p - 1) / p) // messages that arrive before the timeout
	if a, err := strconv.Atoi(s.Limit); err == nil && a > 0 && a <= k {
		return p * time.Duration(a-1) / 2
	}
	return s.Flush - p*time.Duration(k-1)/2
}

// job runs one rank benchmark at the configured size under setting s.
func (cfg *BatchConfig) job(ctx context.Context, s batchSetting, name string, iters int, extra ...string) (*Result, error) {
	args := []string{name, "--json", "--progress=off", "-m", fmt.Sprintf("%d:%d", cfg.Size, cfg.Size)}
	if iters > 0 {
		args = append(args, "-i", strconv.Itoa(iters))
	}
	args = append(args, extra...)
	env := append([]string{"GORUN_TRANSPORT=" + cfg.Transport}, s.env()...)
	res, err := runPair(ctx, cfg.Program, args, env, cfg.Stderr, cfg.JobTimeout)
	if err != nil {
		return nil, fmt.Errorf("batch %s, %s: %w", s, name, err)
	}
	return res, nil
}

// WriteText prints the comparison in OSU's spirit: a header, then a row per setting.
func (r *batchReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# gorun-bench batch: shared-memory batching, aggregation limit A and flush timeout tau\n")
	fmt.Fprintf(&b, "# transport %s, %d-byte messages; rate: mbw_mr, 1 pair, window 64; latency: stream_lat, one message every %v\n",
		r.Transport, r.Size, r.Interval)
	b.WriteString("# Added: latency minus the first setting's; Expected: the mean wait in a batch of this stream (tau/2 for long batches)\n")
	fmt.Fprintf(&b, "# %-22s%16s%14s%16s%14s%16s\n", "Setting", "Messages/s", "MB/s", "Latency (us)", "Added (us)", "Expected (us)")
	quiet := true
	for i, row := range r.Rows {
		fmt.Fprintf(&b, "  %-22s%16.0f%14.2f%16.2f%14.2f%16.2f\n", row.Setting, row.Rate, row.MBps, row.Latency, row.Added, row.Expected)
		if i > 0 && row.Expected > 0 && row.Added > row.Expected/10 {
			quiet = false
		}
	}
	if quiet && len(r.Rows) > 1 {
		b.WriteString("# no setting added latency: the transport does not seem to read GORUN_SHM_BATCH / GORUN_SHM_FLUSH\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
