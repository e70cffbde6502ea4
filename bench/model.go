package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/gorun-hpc/gorun/launcher"
	"github.com/gorun-hpc/gorun/transport"
	"github.com/gorun-hpc/gorun/tuning"
)

// modelPath is one way a message can travel between two ranks of a node, forced by the
// environment its job is started with (the transport and the thresholds are fixed at Init).
type modelPath struct {
	Name  string   `json:"name"`
	About string   `json:"about"`
	Env   []string `json:"env"`
	// MaxSize is the largest size the path exists for (sockets send at most
	// transport.MaxEager eagerly); zero: no limit.
	MaxSize int `json:"max_size,omitempty"`
}

// The model's path names.
const (
	pathShmEager    = "shm-eager"
	pathShmPipe     = "shm-pipelined"
	pathShmCMA      = "shm-single-copy"
	pathUnix        = "unix"
	pathUnixRndv    = "unix-rendezvous"
	pathTCP         = "tcp"
	pathTCPRndv     = "tcp-rendezvous"
	defaultModelMax = 4 << 20
)

// modelPaths are the paths Model measures for message sizes up to maxSize. Each forces one
// protocol at every size: the eager limits are set above maxSize (the shm ring made large
// enough to hold such a record) or to 1 byte (every message of 2 bytes or more takes the
// rendezvous path; 0 in these variables means "unset", not "never").
func modelPaths(maxSize int) []modelPath {
	ring := 1 << 18
	for ring < 2*(maxSize+4096) {
		ring *= 2
	}
	sockEager := min(maxSize, transport.MaxEager)
	return []modelPath{
		{Name: pathShmEager, About: "shared memory, eager: one record in the pair's ring",
			Env: []string{"GORUN_TRANSPORT=shm", "GORUN_SHM_EAGER=" + strconv.Itoa(maxSize), "GORUN_SHM_RING=" + strconv.Itoa(ring), "GORUN_CMA=off"}},
		{Name: pathShmPipe, About: "shared memory, rendezvous, pipelined two-copy through the bulk pipe",
			Env: []string{"GORUN_TRANSPORT=shm", "GORUN_SHM_EAGER=1", "GORUN_CMA=off"}},
		{Name: pathShmCMA, About: "shared memory, rendezvous, single copy (process_vm_readv)",
			Env: []string{"GORUN_TRANSPORT=shm", "GORUN_SHM_EAGER=1", "GORUN_CMA=on", "GORUN_CMA_MIN=1"}},
		{Name: pathUnix, About: "Unix-domain socket, eager", MaxSize: sockEager,
			Env: []string{"GORUN_TRANSPORT=unix", "GORUN_EAGER_LIMIT=" + strconv.Itoa(sockEager)}},
		{Name: pathUnixRndv, About: "Unix-domain socket, rendezvous (RTS/CTS/DATA)",
			Env: []string{"GORUN_TRANSPORT=unix", "GORUN_EAGER_LIMIT=1"}},
		{Name: pathTCP, About: "TCP loopback, eager", MaxSize: sockEager,
			Env: []string{"GORUN_TRANSPORT=tcp", "GORUN_EAGER_LIMIT=" + strconv.Itoa(sockEager)}},
		{Name: pathTCPRndv, About: "TCP loopback, rendezvous (RTS/CTS/DATA)",
			Env: []string{"GORUN_TRANSPORT=tcp", "GORUN_EAGER_LIMIT=1"}},
	}
}

// ModelConfig says what Model measures. The zero value of each field means its default.
type ModelConfig struct {
	// Program is the gorun-bench executable the ranks run (required).
	Program string
	// MinSize and MaxSize bound the sizes (powers of two); default 8 B to 4 MiB.
	MinSize, MaxSize int
	// Iterations and Warmup per size up to 8 KiB (scaled down above, as OSU does); default
	// 1000 and 100.
	Iterations, Warmup int
	// Repeat is how many times each path is measured, the paths taking turns so that a change
	// of the host's CPU placement hits all of them; the model uses the median. Default 3.
	Repeat int
	// Paths names the paths to measure (default: all of modelPaths).
	Paths []string
	// NotifyBytes is d in the reference text's threshold: the size of the control message that
	// tells the receiver shared-memory data is ready. Default 64.
	NotifyBytes int
	// Machine names the machine in the report and the tuning file (default: describeMachine()).
	Machine string
	// TempDir holds the empty tuning file the jobs run with, so that no earlier tuning file
	// colours the measurement; it is removed afterwards. Default: os.TempDir().
	TempDir string
	// JobTimeout bounds each job (default 2 minutes).
	JobTimeout time.Duration
	// Stderr receives the ranks' stderr (default: discarded unless a job fails).
	Stderr io.Writer
	// Progress, if set, shows which path and run is being measured.
	Progress *Progress
}

func (cfg *ModelConfig) fill() error {
	if cfg.Program == "" {
		return errors.New("model: no program to run as ranks")
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = defaultModelMax
	}
	if cfg.MinSize == 0 {
		cfg.MinSize = 8
	}
	if cfg.MinSize > cfg.MaxSize {
		return fmt.Errorf("model: sizes %d to %d", cfg.MinSize, cfg.MaxSize)
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 1000
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 100
	}
	if cfg.Repeat == 0 {
		cfg.Repeat = 3
	}
	if cfg.NotifyBytes == 0 {
		cfg.NotifyBytes = 64
	}
	if cfg.Machine == "" {
		cfg.Machine = describeMachine()
	}
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = 2 * time.Minute
	}
	return nil
}

// paths returns the configured paths, in modelPaths order.
func (cfg *ModelConfig) paths() ([]modelPath, error) {
	all := modelPaths(cfg.MaxSize)
	if len(cfg.Paths) == 0 {
		return all, nil
	}
	var out []modelPath
	for _, name := range cfg.Paths {
		i := slices.IndexFunc(all, func(p modelPath) bool { return p.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("model: unknown path %q", name)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Model measures the one-way latency of every path against message size in two-rank jobs
// started through the launcher, fits L(s) = a + b·s to each, finds the crossovers and
// chooses the thresholds (ModelReport.Tuning). It writes nothing but its temporary file.
func Model(ctx context.Context, cfg ModelConfig) (*ModelReport, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	paths, err := cfg.paths()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "gorun-model-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	empty := filepath.Join(dir, "empty-tuning.json")
	if err := tuning.WriteFile(empty, tuning.File{Machine: "none: built-in defaults"}); err != nil {
		return nil, err
	}
	runs := make([][]*Result, len(paths))
	cfg.Progress.begin(float64(cfg.Repeat * len(paths)))
	for r := range cfg.Repeat {
		for i, p := range paths {
			cfg.Progress.step(fmt.Sprintf("model: %s, run %d of %d", p.Name, r+1, cfg.Repeat), 1)
			res, err := cfg.runPath(ctx, p, empty)
			if err != nil {
				return nil, err
			}
			runs[i] = append(runs[i], res)
		}
	}
	cfg.Progress.end()
	return analyse(&cfg, paths, runs)
}

// runPath runs one latency job over path p.
func (cfg *ModelConfig) runPath(ctx context.Context, p modelPath, tuningPath string) (*Result, error) {
	hi := cfg.MaxSize
	if p.MaxSize > 0 {
		hi = min(hi, p.MaxSize)
	}
	args := []string{"latency", "--json", "--progress=off", "--warm-pass",
		"-m", fmt.Sprintf("%d:%d", cfg.MinSize, hi),
		"-i", strconv.Itoa(cfg.Iterations), "-x", strconv.Itoa(cfg.Warmup)}
	env := append([]string{"GORUN_TUNING=" + tuningPath}, p.Env...)
	res, err := runPair(ctx, cfg.Program, args, env, cfg.Stderr, cfg.JobTimeout)
	if err != nil {
		return nil, fmt.Errorf("model: path %s: %w", p.Name, err)
	}
	return res, nil
}

// runPair runs program as a two-rank job with args and the extra environment env, and reads
// the result it prints with --json. The job's stderr goes to tee as well, when given, and into
// the error when the job fails.
func runPair(ctx context.Context, program string, args, env []string, tee io.Writer, timeout time.Duration) (*Result, error) {
	var stdout, stderr bytes.Buffer
	errw := io.Writer(&stderr)
	if tee != nil {
		errw = io.MultiWriter(&stderr, tee)
	}
	err := launcher.Run(ctx, launcher.Config{
		N: 2, Program: program, Args: args, Env: env,
		Stdout: &stdout, Stderr: errw, Timeout: timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, stderr.String())
	}
	res, err := ReadResult(&stdout)
	if err != nil {
		return nil, fmt.Errorf("reading the result: %w", err)
	}
	return res, nil
}
