package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gorun-hpc/gorun/bench"
	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/tuning"
)

// rankFlags are the flags of a rank benchmark.
type rankFlags struct {
	sizes        sizeRange
	iters, warm  int
	window       int
	transport    string
	batch        string
	flush        time.Duration
	interval     time.Duration
	json, fit    bool
	warmPass     bool
	plot         string
	progressMode string
	comm         string
}

func parseRankFlags(name string, args []string, stdout io.Writer) (rankFlags, error) {
	var f rankFlags
	fs := newFlagSet(name, stdout, usage)
	fs.Var(&f.sizes, "m", "message sizes MIN:MAX")
	fs.IntVar(&f.iters, "i", 0, "iterations per size")
	fs.IntVar(&f.warm, "x", 0, "warm-up iterations per size")
	fs.IntVar(&f.window, "W", 0, "window size")
	fs.StringVar(&f.transport, "transport", "", "auto, shm, unix or tcp")
	fs.StringVar(&f.batch, "batch", "", "shm batching: aggregation limit A")
	fs.DurationVar(&f.flush, "flush", 0, "shm batching: flush timeout")
	fs.DurationVar(&f.interval, "interval", 0, "stream_lat: time between messages")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	fs.StringVar(&f.plot, "plot", "", "draw the result to this file")
	fs.BoolVar(&f.fit, "fit", false, "with --plot: the fitted line")
	fs.BoolVar(&f.warmPass, "warm-pass", false, "run every size once untimed first")
	fs.StringVar(&f.progressMode, "progress", "auto", "auto, on or off")
	fs.StringVar(&f.comm, "comm", "world", "the communicator measured: world, dup or splitnode")
	pos, err := parse(fs, args)
	switch {
	case err != nil:
		return f, err
	case len(pos) > 0:
		return f, usageError{fmt.Errorf("unexpected argument %q", pos[0])}
	case f.iters < 0 || f.warm < 0 || f.window < 0 || f.flush < 0 || f.interval < 0:
		return f, usageError{errors.New("-i, -x, -W, --flush and --interval must not be negative")}
	}
	switch f.transport {
	case "", "auto", "shm", "unix", "tcp":
	default:
		return f, usageError{fmt.Errorf("--transport %q: want auto, shm, unix or tcp", f.transport)}
	}
	switch f.comm {
	case "world", "dup", "splitnode":
	default:
		return f, usageError{fmt.Errorf("--comm %q: want world, dup or splitnode", f.comm)}
	}
	return f, nil
}

// runRank runs one rank benchmark as a rank of the job the environment describes.
func runRank(name string, args []string, stdout, stderr io.Writer) error {
	f, err := parseRankFlags(name, args, stdout)
	if err != nil {
		return err
	}
	// Batching is read from the environment at Init, like every transport setting.
	if f.batch != "" {
		os.Setenv("GORUN_SHM_BATCH", f.batch)
	}
	if f.flush > 0 {
		os.Setenv("GORUN_SHM_FLUSH", f.flush.String())
	}
	world, err := comm.InitWith(comm.Config{Transport: f.transport})
	if err != nil {
		return err
	}
	// On an error the rank exits without Close (which waits for every rank): the launcher
	// then ends the job instead of leaving the others blocked.
	c, err := measured(world, f.comm)
	if err != nil {
		return err
	}
	opt := bench.Options{MinSize: f.sizes.lo, MaxSize: f.sizes.hi, Iterations: f.iters, Warmup: f.warm,
		Window: f.window, Interval: f.interval, WarmPass: f.warmPass, Transport: transportName(f.transport), Notes: notes()}
	if f.comm != "world" {
		opt.Notes = append(opt.Notes, "communicator: "+f.comm+" of the world")
	}
	if c.Rank() == 0 {
		if !f.json {
			opt.Text = stdout
		}
		if opt.Progress, err = bench.NewProgress(os.Stderr, f.progressMode); err != nil {
			return usageError{err}
		}
	}
	res, err := bench.Run(c, name, opt)
	if err != nil {
		return err
	}
	if res != nil {
		if err := emit(res, f, stdout); err != nil {
			return err
		}
	}
	return world.Close()
}

// measured returns the communicator --comm names: the world, a Dup of it, or SplitNode's
// (which must then hold every rank: one table, printed by its rank 0).
func measured(world *comm.Comm, which string) (*comm.Comm, error) {
	switch which {
	case "dup":
		return world.Dup()
	case "splitnode":
		c, err := world.SplitNode()
		if err == nil && c.Size() != world.Size() {
			err = usageError{fmt.Errorf("--comm splitnode: the job spans several nodes (this one holds %d of %d ranks)", c.Size(), world.Size())}
		}
		return c, err
	}
	return world, nil
}

// emit prints rank 0's JSON and draws its plot.
func emit(res *bench.Result, f rankFlags, stdout io.Writer) error {
	if f.json {
		if err := res.WriteJSON(stdout); err != nil {
			return err
		}
	}
	if f.plot == "" {
		return nil
	}
	res.Label = fmt.Sprintf("gorun %s (%s)", res.Benchmark, res.Path)
	fig, err := bench.ResultsFigure(fmt.Sprintf("%s, %d ranks, transport %s", res.Title, res.Ranks, res.Transport),
		[]*bench.Result{res}, f.fit)
	if err != nil {
		return err
	}
	return fig.Save(f.plot)
}

// transportName is the transport the ranks were asked for.
func transportName(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := os.Getenv("GORUN_TRANSPORT"); v != "" {
		return v
	}
	return "auto"
}

// notes are the header lines about the settings in force.
func notes() []string {
	var out []string
	if t, err := tuning.Resolve(tuning.Params{}, os.Getenv); err == nil {
		out = append(out, "tuning: "+t.Source)
	}
	if a := os.Getenv("GORUN_SHM_BATCH"); a != "" {
		out = append(out, fmt.Sprintf("shm batching: A=%s, flush=%s (GORUN_SHM_BATCH, GORUN_SHM_FLUSH)", a, os.Getenv("GORUN_SHM_FLUSH")))
	}
	return out
}
