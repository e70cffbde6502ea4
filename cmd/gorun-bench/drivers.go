package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gorun-hpc/gorun/bench"
	"github.com/gorun-hpc/gorun/tuning"
)

const modelUsage = `Usage: gorun-bench model [flags]

Runs two-rank jobs (no gorun needed) that measure one-way latency against
message size on every path, forcing each path through the environment:
shm-eager, shm-pipelined, shm-single-copy, unix, unix-rendezvous, tcp,
tcp-rendezvous. Fits L(s) = a + b*s to each path (weighted least squares,
with standard errors and R^2), reports where the lines cross (eager ->
rendezvous, pipelined -> single copy, sockets vs shm) and the reference
text's T = (a_s + b_q*d)/(b_q - b_s), and writes the chosen thresholds as a
tuning file that every rank loads at start ('gorun --explain' shows them).

Flags:
  -m MIN:MAX        sizes (default 8:4M)
  -i N, -x N        iterations and warm-up per size up to 8 KiB (default
                    1000, 100; larger sizes a tenth)
  --repeat N        runs per path, paths taking turns; medians (default 3)
  --paths LIST      comma-separated subset of the paths
  --notify-bytes D  d of the reference text's threshold (default 64)
  --out PATH        tuning file to write (default %s;
                    GORUN_TUNING names another for the ranks); - : none
  --plot FILE       draw medians, fitted lines and thresholds (.svg, .png);
                    repeatable
  --json            print the report as JSON instead of text
  --machine NAME    name of the machine in the report (default: detected)
  --timeout D       bound on each job (default 2m)
  --progress MODE   auto, on or off
`

const batchUsage = `Usage: gorun-bench batch [flags]

Compares shared-memory batching settings (the reference text: an aggregation
limit A and a flush timeout tau raise the message rate and add about tau/2 of
latency). For each setting it runs mbw_mr (rate) and stream_lat (one-way
delay of a paced stream) on two ranks with GORUN_SHM_BATCH=A and
GORUN_SHM_FLUSH=tau.

Flags:
  --settings LIST   comma-separated: off or A/tau (default off,16/20us,64/100us)
  --transport T     default shm
  --size N          message size (default 8)
  -i N              mbw_mr iterations (windows of 64; default OSU's)
  --messages N      stream_lat messages (default OSU's latency count)
  --interval D      stream_lat: time between messages (default 10us)
  --repeat N        runs per setting, settings taking turns (default 3)
  --json            print JSON
  --progress MODE   auto, on or off
`

const plotUsage = `Usage: gorun-bench plot FILE... -o OUT [--fit] [--title T]

Draws saved results side by side on log-log axes, one line per file, the
first value column against size. A FILE is gorun-bench --json output, or a
table in OSU's layout (gorun-bench's, the OSU micro-benchmarks', or the C
anchors'); its legend label is the file name without extension.
  -o OUT       the plot (.svg, .png or .pdf)
  --fit        add each line's fitted L(s) = a + b*s (latency results)
  --title T    the plot's title
`

func printer(text string) func(io.Writer) {
	return func(w io.Writer) { fmt.Fprint(w, text) }
}

// driver is what a driver (model, batch) needs to start its jobs: this executable as their
// program, a progress line, and a context that SIGINT or SIGTERM cancels, so that the jobs
// it started are ended.
type driver struct {
	program  string
	progress *bench.Progress
	ctx      context.Context
	cancel   context.CancelFunc
}

func startDriver(progressMode string) (*driver, error) {
	progress, err := bench.NewProgress(os.Stderr, progressMode)
	if err != nil {
		return nil, usageError{err}
	}
	program, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return &driver{program: program, progress: progress, ctx: ctx, cancel: cancel}, nil
}

// writeReport prints a driver's report as text, or as indented JSON.
func writeReport(w io.Writer, rep interface{ WriteText(io.Writer) error }, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(w)
}

func runModel(args []string, stdout, stderr io.Writer) error {
	cfg := bench.ModelConfig{}
	var sizes sizeRange
	var paths, out, progress string
	var plots []string
	var asJSON bool
	fs := newFlagSet("model", stdout, printer(fmt.Sprintf(modelUsage, tuning.DefaultPath())))
	fs.Var(&sizes, "m", "sizes")
	fs.IntVar(&cfg.Iterations, "i", 0, "iterations")
	fs.IntVar(&cfg.Warmup, "x", 0, "warm-up")
	fs.IntVar(&cfg.Repeat, "repeat", 0, "runs per path")
	fs.StringVar(&paths, "paths", "", "paths")
	fs.IntVar(&cfg.NotifyBytes, "notify-bytes", 0, "d")
	fs.StringVar(&out, "out", tuning.DefaultPath(), "tuning file")
	fs.Func("plot", "plot file (repeatable)", func(v string) error { plots = append(plots, v); return nil })
	fs.BoolVar(&asJSON, "json", false, "JSON")
	fs.StringVar(&cfg.Machine, "machine", "", "machine name")
	fs.DurationVar(&cfg.JobTimeout, "timeout", 0, "per job")
	fs.StringVar(&progress, "progress", "auto", "progress")
	if pos, err := parse(fs, args); err != nil || len(pos) > 0 {
		return firstErr(err, pos)
	}
	cfg.MinSize, cfg.MaxSize = sizes.lo, sizes.hi
	if paths != "" {
		cfg.Paths = strings.Split(paths, ",")
	}
	d, err := startDriver(progress)
	if err != nil {
		return err
	}
	defer d.cancel()
	cfg.Progress, cfg.Program = d.progress, d.program
	rep, err := bench.Model(d.ctx, cfg)
	if err != nil {
		return err
	}
	if err := writeReport(stdout, rep, asJSON); err != nil {
		return err
	}
	for _, p := range plots {
		if err := rep.Figure().Save(p); err != nil {
			return err
		}
	}
	return writeTuning(rep, out, stderr)
}

func writeTuning(rep *bench.ModelReport, out string, stderr io.Writer) error {
	if out == "-" || out == "" {
		return nil
	}
	f, err := rep.TuningFile()
	if err != nil {
		return err
	}
	if err := tuning.WriteFile(out, f); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "gorun-bench model: wrote %s; 'gorun --explain' shows what it chooses", out)
	if os.Getenv("GORUN_TUNING") != "" && os.Getenv("GORUN_TUNING") != out {
		fmt.Fprintf(stderr, " (GORUN_TUNING=%s names another file)", os.Getenv("GORUN_TUNING"))
	}
	fmt.Fprintln(stderr)
	return nil
}

func firstErr(err error, pos []string) error {
	if err != nil {
		return err
	}
	return usageError{fmt.Errorf("unexpected argument %q", pos[0])}
}

func runBatch(args []string, stdout, _ io.Writer) error {
	cfg := bench.BatchConfig{}
	var settings, progress string
	var asJSON bool
	fs := newFlagSet("batch", stdout, printer(batchUsage))
	fs.StringVar(&settings, "settings", "", "settings")
	fs.StringVar(&cfg.Transport, "transport", "", "transport")
	fs.IntVar(&cfg.Size, "size", 0, "message size")
	fs.IntVar(&cfg.RateIterations, "i", 0, "mbw_mr iterations")
	fs.IntVar(&cfg.StreamMessages, "messages", 0, "stream_lat messages")
	fs.DurationVar(&cfg.Interval, "interval", 0, "stream interval")
	fs.IntVar(&cfg.Repeat, "repeat", 0, "runs per setting")
	fs.BoolVar(&asJSON, "json", false, "JSON")
	fs.StringVar(&progress, "progress", "auto", "progress")
	if pos, err := parse(fs, args); err != nil || len(pos) > 0 {
		return firstErr(err, pos)
	}
	if settings != "" {
		for _, s := range strings.Split(settings, ",") {
			bs, err := bench.ParseBatchSetting(s)
			if err != nil {
				return usageError{err}
			}
			cfg.Settings = append(cfg.Settings, bs)
		}
	}
	d, err := startDriver(progress)
	if err != nil {
		return err
	}
	defer d.cancel()
	cfg.Progress, cfg.Program = d.progress, d.program
	rep, err := bench.Batching(d.ctx, cfg)
	if err != nil {
		return err
	}
	return writeReport(stdout, rep, asJSON)
}

func runPlot(args []string, stdout io.Writer) error {
	var out, title string
	var fit bool
	fs := newFlagSet("plot", stdout, printer(plotUsage))
	fs.StringVar(&out, "o", "", "output file")
	fs.BoolVar(&fit, "fit", false, "fitted lines")
	fs.StringVar(&title, "title", "", "title")
	files, err := parse(fs, args)
	switch {
	case err != nil:
		return err
	case len(files) == 0 || out == "":
		return usageError{errors.New("need input files and -o OUT")}
	}
	var results []*bench.Result
	for _, name := range files {
		r, err := readResultFile(name)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if title == "" {
		title = results[0].Title
	}
	fig, err := bench.ResultsFigure(title, results, fit)
	if err != nil {
		return err
	}
	return fig.Save(out)
}

func readResultFile(name string) (*bench.Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := bench.ReadResult(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.Label = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	return r, nil
}
