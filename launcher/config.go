package launcher

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gorun-hpc/gorun/topology"
)

// DefaultGrace is the time ranks get between SIGTERM and SIGKILL when
// Config.Grace is zero.
const DefaultGrace = time.Second

// Config describes one job. The zero value of each optional field means its
// default.
type Config struct {
	// N is the number of ranks (>= 1).
	N int
	// Program is an executable (a path, or a name looked up in PATH), or a
	// Go package directory or .go file that Run builds first (see
	// ResolveProgram). Callers that run many jobs resolve it once and pass
	// the binary.
	Program string
	// Args are the program's arguments, the same for every rank.
	Args []string
	// Env holds extra KEY=VALUE entries for every rank, on top of the
	// launcher's own environment; they override it. The variables Run sets
	// itself (PMI_FD, PMI_RANK, PMI_SIZE, GORUN_JOBID, GORUN_JOB_KEY,
	// GORUN_LOCAL_RANK, GORUN_LOCAL_SIZE, GORUN_CPUS, and for remote ranks
	// PMI_PORT, PMI_ID, GORUN_WATCH) cannot be overridden. Remote ranks get
	// these (and gorun's GORUN_* settings), not the launcher's environment.
	// A non-empty GOMAXPROCS here or in the launcher's environment replaces
	// the one Run would set (see the package documentation).
	Env []string
	// BindTo is what CPU set each rank is bound to (see topology.BindTo).
	// The zero value, topology.BindDefault, binds each rank to a core when
	// the ranks fit the usable CPUs, and binds nothing when they
	// oversubscribe them.
	BindTo topology.BindTo
	// MapBy is how ranks are laid out over the cores; the zero value is
	// topology.MapCore, consecutive cores in order.
	MapBy topology.MapBy
	// TagOutput prefixes every forwarded line with "[rank] ".
	TagOutput bool
	// Stdout and Stderr receive the ranks' forwarded output, one whole line
	// per Write call. Nil means os.Stdout and os.Stderr. Writes are
	// serialised, so one writer may serve both.
	Stdout, Stderr io.Writer
	// Stdin is forwarded to rank 0 (nil: the ranks' stdin is /dev/null). An
	// *os.File is handed to rank 0 directly; any other reader is copied by a
	// goroutine that Run waits for, so it must not block forever.
	Stdin io.Reader
	// Timeout, if positive, is the longest the job may run before it is
	// aborted (counted from when the ranks have been started; building
	// Program does not count).
	Timeout time.Duration
	// Grace is how long ranks get between SIGTERM and SIGKILL when the job
	// is ended early (0: DefaultGrace).
	Grace time.Duration

	// Hosts, if not empty, spreads the ranks over these hosts in blocks:
	// the first host's slots fill first, then the next host's (see the
	// package documentation). N must not exceed the slots. Nil: every rank
	// on this machine.
	Hosts []Host
	// LaunchCmd starts a rank on another host: a command line in which
	// {host} stands for the host's name, followed by "env VAR=value …
	// PROGRAM ARGS" (shell-quoted when the command is ssh or rsh). Empty:
	// DefaultLaunchCmd. Used only with Hosts.
	LaunchCmd string
	// PMIAddr is the host name or address remote ranks use to reach the
	// launcher (its PMI and watch ports). Empty: chosen per host (see the
	// package documentation). Used only with Hosts.
	PMIAddr string
}

// withDefaults validates cfg and fills in the defaults.
func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	if cfg.N < 1 {
		errs = append(errs, fmt.Errorf("N = %d: need at least one rank", cfg.N))
	}
	if cfg.N > MaxRanks {
		errs = append(errs, fmt.Errorf("N = %d: at most %d ranks", cfg.N, MaxRanks))
	}
	if cfg.Program == "" {
		errs = append(errs, errors.New("no program"))
	}
	for _, kv := range cfg.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			errs = append(errs, fmt.Errorf("environment entry %q is not KEY=VALUE", kv))
		}
	}
	// String names an out-of-range value "BindTo(9)", which Parse rejects.
	if _, err := topology.ParseBindTo(cfg.BindTo.String()); err != nil {
		errs = append(errs, err)
	}
	if _, err := topology.ParseMapBy(cfg.MapBy.String()); err != nil {
		errs = append(errs, err)
	}
	if cfg.Timeout < 0 || cfg.Grace < 0 {
		errs = append(errs, fmt.Errorf("negative timeout (%v) or grace (%v)", cfg.Timeout, cfg.Grace))
	}
	if len(cfg.Hosts) > 0 {
		if err := checkHosts(cfg.Hosts, cfg.N); err != nil {
			errs = append(errs, err)
		}
		if cfg.LaunchCmd == "" {
			cfg.LaunchCmd = DefaultLaunchCmd
		}
		if _, err := parseLaunchCmd(cfg.LaunchCmd); err != nil {
			errs = append(errs, err)
		}
		if strings.ContainsAny(cfg.PMIAddr, " \t\n\x00") {
			errs = append(errs, fmt.Errorf("PMIAddr %q: not a host name or address", cfg.PMIAddr))
		}
	} else if cfg.LaunchCmd != "" || cfg.PMIAddr != "" {
		errs = append(errs, errNoHosts)
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	return cfg, errors.Join(errs...)
}
