package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gorun-hpc/gorun/bench"
)

const usageHead = `Usage: gorun -n N gorun-bench BENCHMARK [flags]     (ranks of a job)
       gorun-bench model|batch|plot [flags]          (drivers: start their own jobs)

Rank benchmarks print the OSU micro-benchmarks' table (OSU 7 method and
defaults) on rank 0; --json prints the result for tools instead.
`

const usageRankFlags = `
Flags of the rank benchmarks (-flag and --flag are the same):
  -m MIN:MAX        message sizes, bytes; K and M suffixes (-m 1:64K, -m 1M)
  -i N              iterations per size up to 8 KiB (larger sizes: OSU's
                    smaller count, scaled); default OSU's
  -x N              warm-up iterations, likewise
  -W N              window of bw, bibw, mbw_mr (default 64)
  --transport T     auto, shm, unix or tcp (sets GORUN_TRANSPORT in each rank)
  --comm C          the communicator measured: world (default), dup (a Dup of
                    the world) or splitnode (SplitNode's; the job on one node)
  --batch A         shm batching: aggregation limit (GORUN_SHM_BATCH)
  --flush D         shm batching: flush timeout, e.g. 20us (GORUN_SHM_FLUSH)
  --interval D      stream_lat: time between messages (default 10us)
  --warm-pass       run every size once, untimed, before measuring (memory
                    touched for the first time is not charged to small sizes)
  --json            print the result as JSON instead of the table
  --plot FILE       also draw it, log-log, to FILE (.svg, .png or .pdf)
  --fit             with --plot: add the fitted line L(s) = a + b*s
  --progress MODE   auto (on a terminal), on or off; a line on stderr
                    with the size being measured and the time left

Drivers:
  model   measure one-way latency on every path (shm eager, shm pipelined,
          shm single copy, unix and tcp, eager and rendezvous), fit
          L(s) = a + b*s to each, report the crossovers and write the chosen
          thresholds as a tuning file ('gorun-bench model --help')
  batch   message rate and added latency with shm batching off and on
  plot    draw saved results (--json output, OSU or anchor tables) side by
          side: gorun-bench plot a.json b.txt -o out.svg

Examples:
  gorun -n 2 ./cmd/gorun-bench latency --transport tcp -m 0:64K
  gorun -n 4 ./cmd/gorun-bench bcast --json > bcast4.json
  gorun -n 2 ./cmd/gorun-bench mbw_mr --batch 32 --flush 20us
  gorun -n 4 ./cmd/gorun-bench neighbor_alltoall -m 8:1M   (then neighbor_isend)
  gorun-bench model --plot model.svg && gorun --explain
`

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString(usageHead)
	b.WriteString("\nRank benchmarks:\n")
	for _, bm := range bench.Benchmarks() {
		fmt.Fprintf(&b, "  %-17s %s\n", bm.Name, bm.Summary)
	}
	b.WriteString(usageRankFlags)
	fmt.Fprint(w, b.String())
}

// run is gorun-bench: it returns the exit status (0, 1 on failure, 2 on a usage error).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	var err error
	switch {
	case name == "-h" || name == "-help" || name == "--help" || name == "help":
		usage(stdout)
		return 0
	case bench.IsBenchmark(name):
		err = runRank(name, rest, stdout, stderr)
	case name == "model":
		err = runModel(rest, stdout, stderr)
	case name == "batch":
		err = runBatch(rest, stdout, stderr)
	case name == "plot":
		err = runPlot(rest, stdout)
	default:
		fmt.Fprintf(stderr, "gorun-bench: unknown benchmark %q\nRun 'gorun-bench --help' for the list.\n", name)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "gorun-bench %s: %v\nRun 'gorun-bench %s --help' for usage.\n", name, ue.err, name)
		return 2
	}
	fmt.Fprintf(stderr, "gorun-bench %s: %v\n", name, err)
	return 1
}

// usageError is a bad command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// parse parses args with fs, allowing flags after positional arguments too (gorun-bench plot
// a.json -o out.svg), and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// newFlagSet returns a flag set that reports errors to the caller only; --help prints usage
// to out.
func newFlagSet(name string, out io.Writer, usage func(io.Writer)) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { usage(out) }
	return fs
}

// sizeRange is the -m flag.
type sizeRange struct{ lo, hi int }

func (s *sizeRange) String() string { return fmt.Sprintf("%d:%d", s.lo, s.hi) }

func (s *sizeRange) Set(v string) (err error) {
	s.lo, s.hi, err = bench.ParseSizeRange(v)
	return err
}
