package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/launcher"
	"github.com/gorun-hpc/gorun/topology"
)

const usage = `Usage: gorun [flags] PROGRAM [ARGS...]
       gorun --topology [-n N] [--bind-to WHAT] [--map-by HOW] [--json]
       gorun --explain

Starts N copies (ranks) of PROGRAM, connects them through gorun's PMI
server, forwards their output line by line, and ends the whole job as soon
as one rank fails. PROGRAM is an executable, or a Go package directory or
.go file that gorun builds once first (like go run). Flags end at PROGRAM:
everything after it is passed unchanged to every rank.

Flags (-flag and --flag are the same):
  -n N            number of ranks (default 1)                  -n 8
  --tag-output    prefix every output line with "[rank] "      --tag-output
  --timeout D     abort the job if it runs longer than D       --timeout 5m
                  (a Go duration: 300ms, 30s, 1h; 0 = no limit)
  --grace D       when the job is ended early, time between     --grace 3s
                  SIGTERM and SIGKILL (default 1s)
  -x VAR[=value]  pass VAR to every rank: VAR alone passes      -x OMP_NUM_THREADS=1
                  gorun's own value, VAR=value sets it;         -x LD_LIBRARY_PATH
                  repeatable
  --bind-to WHAT  bind each rank to one core, to its core's     --bind-to core
                  L3 cache domain or NUMA node, or none: core,
                  l3, numa or none (default: core when the
                  ranks fit the usable CPUs, none when they
                  oversubscribe them)
  --map-by HOW    lay ranks out on consecutive cores (core) or  --map-by l3
                  one per L3 domain or NUMA node in turn (l3,
                  numa); default core
  --topology      print this machine (packages, NUMA nodes,     --topology -n 8
                  caches, cores, line size) and exit; with -n,
                  also where each rank would be placed
  --json          with --topology: print JSON for tools         --topology --json -n 4
  --hosts LIST    spread the ranks over hosts, in blocks: the   --hosts a:4,b:4
                  first host's slots fill first; NAME:SLOTS
                  (NAME alone: 1 slot); without -n, one rank
                  per slot
  --hostfile F    the same from a file: lines "NAME slots=N"   --hostfile nodes.txt
                  or "NAME:N", '#' comments
  --launch-cmd T  how to start ranks on another host; {host}    --launch-cmd 'ip netns exec {host}'
                  is the host's name (default: ssh -o
                  BatchMode=yes {host})
  --pmi-addr A    the address of this machine remote ranks      --pmi-addr 10.1.0.5
                  connect back to (default: chosen per host)
  --explain       print which protocol each message size takes  --explain
                  on each path with the current environment and
                  tuning file (GORUN_TUNING, else the file that
                  gorun-bench model writes), and exit
  --help          print this help

Examples:
  gorun -n 4 ./examples/pi
  gorun -n 2 --tag-output --timeout 1m -x GOGC=off ./bin/solver -grid 4096
  gorun -n 4 --bind-to numa --map-by numa ./bin/solver
  gorun --topology -n 16 --map-by l3
  gorun --hosts node1:4,node2:4 ./bin/solver
  gorun --explain        (after gorun-bench model wrote a tuning file)

Each rank also inherits gorun's environment and gets PMI_FD, PMI_RANK,
PMI_SIZE, GORUN_JOBID, GORUN_JOB_KEY, GORUN_LOCAL_RANK, GORUN_LOCAL_SIZE,
GORUN_CPUS (the CPUs it is bound to, empty if unbound) and GOMAXPROCS (its
share of the CPUs, unless GOMAXPROCS is set in gorun's environment or with
-x). A bound rank starts on its CPUs, so its Go runtime sizes itself to them.
stdin goes to rank 0. SIGINT and SIGTERM to gorun end every rank (SIGTERM,
then SIGKILL after the grace time).

Exit status: 0 if every rank exited 0; else the failed rank's exit status,
128+N if it was killed by signal N, the code it passed to PMI abort, 124 on
--timeout, 128+N if gorun itself got signal N, 2 for a usage error, 1 for
anything else. The reason is printed as one line on stderr.

With --hosts, ranks on this machine (the host named localhost or as this
machine) start as above; the others through the launch command, as
"LAUNCH-CMD env VAR=value ... PROGRAM ARGS": PROGRAM must exist at the same
path there. They get -x variables, gorun's GORUN_* settings and the job's
variables (PMI_PORT, PMI_ID, GORUN_WATCH, ...) on that command line, and
connect back to gorun over TCP. When the job ends, remote ranks still
running kill themselves. See docs/cluster.md.
`

// options are gorun's flags.
type options struct {
	n         int
	tagOutput bool
	timeout   time.Duration
	grace     time.Duration
	env       envList
	bindTo    topology.BindTo
	mapBy     topology.MapBy
	topology  bool
	json      bool
	explain   bool
	hosts     string
	hostfile  string
	launchCmd string
	pmiAddr   string
}

// newFlagSet declares every flag, bound to o. It reports nothing itself:
// run prints usage and errors.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("gorun", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.IntVar(&o.n, "n", 1, "number of ranks")
	fs.BoolVar(&o.tagOutput, "tag-output", false, "prefix output lines with the rank")
	fs.DurationVar(&o.timeout, "timeout", 0, "abort the job after this long")
	fs.DurationVar(&o.grace, "grace", launcher.DefaultGrace, "time between SIGTERM and SIGKILL")
	fs.Var(&o.env, "x", "pass VAR or set VAR=value in every rank")
	fs.Func("bind-to", "core, l3, numa or none", func(s string) (err error) {
		o.bindTo, err = topology.ParseBindTo(s)
		return err
	})
	fs.Func("map-by", "core, l3 or numa", func(s string) (err error) {
		o.mapBy, err = topology.ParseMapBy(s)
		return err
	})
	fs.BoolVar(&o.topology, "topology", false, "print the machine and exit")
	fs.BoolVar(&o.json, "json", false, "with --topology: print JSON")
	fs.BoolVar(&o.explain, "explain", false, "print the protocol choices and exit")
	fs.StringVar(&o.hosts, "hosts", "", "hosts and their slots: a:4,b:4")
	fs.StringVar(&o.hostfile, "hostfile", "", "file listing the hosts")
	fs.StringVar(&o.launchCmd, "launch-cmd", "", "command that starts a rank on {host}")
	fs.StringVar(&o.pmiAddr, "pmi-addr", "", "address remote ranks connect back to")
	return fs
}

// envList is the repeatable -x flag.
type envList struct {
	lookup func(string) (string, bool) // gorun's environment
	vars   []string                    // KEY=VALUE
}

func (e *envList) String() string { return strings.Join(e.vars, " ") }

func (e *envList) Set(s string) error {
	k, v, hasValue := strings.Cut(s, "=")
	if k == "" || strings.ContainsRune(s, 0) {
		return fmt.Errorf("want VAR or VAR=value, got %q", s)
	}
	if !hasValue {
		var ok bool
		if v, ok = e.lookup(k); !ok {
			return fmt.Errorf("%s is not set in gorun's environment (use -x %s=value)", k, k)
		}
	}
	e.vars = append(e.vars, k+"="+v)
	return nil
}

// invocation is what the command line asks for: a job, or (topology) a
// look at the machine.
type invocation struct {
	// cfg is the job, without the I/O fields. With topology, only N,
	// BindTo and MapBy are set.
	cfg launcher.Config
	// topology asks to print the machine instead of running a job, as JSON
	// if json is set, with placements for cfg.N ranks if place is set (-n
	// was given).
	topology, json, place bool
	// explain asks to print the protocol choices instead of running a job.
	explain bool
}

// parseArgs parses the command line. It returns flag.ErrHelp for --help.
func parseArgs(args []string, lookupEnv func(string) (string, bool)) (invocation, error) {
	o := options{env: envList{lookup: lookupEnv}}
	fs := newFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		return invocation{}, err
	}
	if o.n < 1 {
		return invocation{}, fmt.Errorf("-n %d: need at least one rank", o.n)
	}
	if o.n > launcher.MaxRanks {
		return invocation{}, fmt.Errorf("-n %d: at most %d ranks", o.n, launcher.MaxRanks)
	}
	if o.explain {
		if fs.NArg() > 0 || o.topology {
			return invocation{}, errors.New("--explain takes no PROGRAM and no --topology")
		}
		return invocation{explain: true}, nil
	}
	if o.topology {
		if fs.NArg() > 0 {
			return invocation{}, fmt.Errorf("--topology runs no program, got %q", fs.Arg(0))
		}
		inv := invocation{topology: true, json: o.json,
			cfg: launcher.Config{N: o.n, BindTo: o.bindTo, MapBy: o.mapBy}}
		fs.Visit(func(f *flag.Flag) { inv.place = inv.place || f.Name == "n" })
		return inv, nil
	}
	switch {
	case o.json:
		return invocation{}, errors.New("--json needs --topology")
	case fs.NArg() == 0:
		return invocation{}, errors.New("no PROGRAM given")
	case o.timeout < 0 || o.grace <= 0:
		return invocation{}, errors.New("--timeout must be >= 0 and --grace > 0")
	}
	hosts, err := o.hostList(fs)
	if err != nil {
		return invocation{}, err
	}
	return invocation{cfg: launcher.Config{
		Hosts:     hosts,
		LaunchCmd: o.launchCmd,
		PMIAddr:   o.pmiAddr,
		N:         o.n,
		Program:   fs.Arg(0),
		Args:      fs.Args()[1:],
		Env:       o.env.vars,
		BindTo:    o.bindTo,
		MapBy:     o.mapBy,
		TagOutput: o.tagOutput,
		Timeout:   o.timeout,
		Grace:     o.grace,
	}}, nil
}

// hostList reads --hosts or --hostfile. Without -n, the job gets one rank
// per slot.
func (o *options) hostList(fs *flag.FlagSet) ([]launcher.Host, error) {
	var hosts []launcher.Host
	var err error
	switch {
	case o.hosts != "" && o.hostfile != "":
		return nil, errors.New("give --hosts or --hostfile, not both")
	case o.hosts != "":
		hosts, err = launcher.ParseHosts(o.hosts)
	case o.hostfile != "":
		hosts, err = launcher.ReadHostfile(o.hostfile)
	case o.launchCmd != "" || o.pmiAddr != "":
		return nil, errors.New("--launch-cmd and --pmi-addr need --hosts or --hostfile")
	}
	if err != nil || hosts == nil {
		return nil, err
	}
	total, err := launcher.TotalSlots(hosts)
	if err != nil {
		return nil, err
	}
	nGiven := false
	fs.Visit(func(f *flag.Flag) { nGiven = nGiven || f.Name == "n" })
	if !nGiven {
		o.n = total
	}
	return hosts, nil
}

// run is gorun: it returns the exit status.
func run(args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	inv, err := parseArgs(args, lookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "gorun: %v\nRun 'gorun --help' for usage.\n", err)
		return 2
	}
	if inv.explain {
		if err := printExplain(stdout, lookupEnv); err != nil {
			fmt.Fprintf(stderr, "gorun: %v\n", err)
			return 1
		}
		return 0
	}
	if inv.topology {
		if err := printTopology(stdout, inv); err != nil {
			fmt.Fprintf(stderr, "gorun: %v\n", err)
			return 1
		}
		return 0
	}
	cfg := inv.cfg
	cfg.Stdin, cfg.Stdout, cfg.Stderr = stdin, stdout, stderr
	ctx, stop := signalContext()
	defer stop()
	err = launcher.Run(ctx, cfg)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, err)
	return exitCode(err)
}

// exitCode maps Run's error to gorun's exit status.
func exitCode(err error) int {
	var sig signalled
	if errors.As(err, &sig) {
		return 128 + int(sig.sig)
	}
	var je *launcher.JobError
	if errors.As(err, &je) {
		return je.ExitCode()
	}
	return 1
}

// signalled is the cancellation cause when gorun gets SIGINT or SIGTERM.
type signalled struct{ sig syscall.Signal }

func (s signalled) Error() string { return "gorun got signal " + s.sig.String() }

// signalContext returns a context cancelled, with cause signalled, on the
// first SIGINT or SIGTERM. Its goroutine is owned by stop, which ends it and
// waits for it.
func signalContext() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case s := <-sigs:
			cancel(signalled{s.(syscall.Signal)})
		case <-done:
		}
	})
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		wg.Wait()
		cancel(nil)
	}
}
