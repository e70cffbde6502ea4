package rank

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gorun-hpc/gorun/transport"
)

// Tuning holds the thresholds and sizes that choose a protocol per message size. Each field
// is set, in order of precedence, by the program (Config.Tuning), the environment (the
// GORUN_* names below), the tuning file that gorun-bench model writes (GORUN_TUNING, else
// DefaultTuningPath), or the built-in defaults (measured on the machine named in
// docs/benchmarks.md). Zero means "not set".
type Tuning struct {
	SockEager int `json:"sock_eager,omitempty"` // sockets: largest eager message (GORUN_EAGER_LIMIT)
	ShmEager  int `json:"shm_eager,omitempty"`  // shared memory: largest eager message (GORUN_SHM_EAGER)
	ShmRing   int `json:"shm_ring,omitempty"`   // bytes of each ring's record area (GORUN_SHM_RING)
	ShmBulk   int `json:"shm_bulk,omitempty"`   // bytes of each bulk pipe (GORUN_SHM_BULK)
	ShmChunk  int `json:"shm_chunk,omitempty"`  // bytes per step of the pipelined copy (GORUN_SHM_CHUNK)
	// CMA: "auto" (single copy where it pays: for large messages on an oversubscribed node,
	// where the pipelined copy would need both ranks on a CPU at once), "on" (every
	// rendezvous from CMAMin up), "off" (never; also skips the probe). GORUN_CMA.
	CMA    string `json:"cma,omitempty"`
	CMAMin int    `json:"cma_min,omitempty"` // GORUN_CMA_MIN: smallest message sent by single copy
	// Summary: above this many local peers a receiver reads its summary bitmap instead of
	// scanning every ring (GORUN_SHM_SUMMARY_ABOVE).
	Summary int `json:"summary_above,omitempty"`
	// ShmBatch > 1 batches eager shared-memory messages, publishing them ShmBatch at a time
	// or after ShmFlush (GORUN_SHM_BATCH, GORUN_SHM_FLUSH as a Go duration): message rate for
	// latency (about ShmFlush/2 added). Off by default.
	ShmBatch int           `json:"shm_batch,omitempty"`
	ShmFlush time.Duration `json:"shm_flush_ns,omitempty"`
	// ShmFallback forces the /dev/shm file instead of memfd_create (GORUN_SHM_FALLBACK=1).
	ShmFallback bool `json:"-"`
	// Source says where the values came from, for --explain.
	Source string `json:"-"`
}

// TuningFile is what gorun-bench model writes: the chosen thresholds and the measurements
// behind them.
type TuningFile struct {
	Version  int       `json:"version"`
	Machine  string    `json:"machine"`  // what it was measured on
	Measured time.Time `json:"measured"` // when
	Tuning   Tuning    `json:"tuning"`
	// Model holds the fitted cost model per path, for reference (gorun-bench model explains it).
	Model json.RawMessage `json:"model,omitempty"`
}

const tuningFileVersion = 1

// DefaultTuningPath is where gorun-bench model writes and ranks look for a tuning file when
// GORUN_TUNING is unset: $XDG_CONFIG_HOME/gorun/tuning.json, else ~/.config/gorun/tuning.json.
func DefaultTuningPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "gorun", "tuning.json")
}

// ReadTuningFile reads a tuning file. Its values are checked like the environment's.
func ReadTuningFile(path string) (TuningFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TuningFile{}, err
	}
	var f TuningFile
	if err := json.Unmarshal(b, &f); err != nil {
		return TuningFile{}, fmt.Errorf("tuning file %s: %w", path, err)
	}
	if f.Version != tuningFileVersion {
		return TuningFile{}, fmt.Errorf("tuning file %s: version %d, want %d", path, f.Version, tuningFileVersion)
	}
	if err := f.Tuning.check(); err != nil {
		return TuningFile{}, fmt.Errorf("tuning file %s: %w", path, err)
	}
	return f, nil
}

// WriteTuningFile writes f to path (creating its directory), atomically.
func WriteTuningFile(path string, f TuningFile) error {
	f.Version = tuningFileVersion
	if err := f.Tuning.check(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (t *Tuning) check() error {
	for _, v := range []int{t.SockEager, t.ShmEager, t.ShmRing, t.ShmBulk, t.ShmChunk, t.CMAMin, t.Summary, t.ShmBatch, int(t.ShmFlush)} {
		if v < 0 {
			return fmt.Errorf("negative size %d", v)
		}
	}
	if t.SockEager > transport.MaxEager {
		return fmt.Errorf("socket eager limit %d above %d", t.SockEager, transport.MaxEager)
	}
	switch t.CMA {
	case "", "auto", "on", "off":
		return nil
	}
	return fmt.Errorf("cma %q: want auto, on or off", t.CMA)
}

// merge fills t's unset fields from o.
func (t *Tuning) merge(o Tuning) {
	for _, f := range []struct{ dst, src *int }{
		{&t.SockEager, &o.SockEager}, {&t.ShmEager, &o.ShmEager}, {&t.ShmRing, &o.ShmRing},
		{&t.ShmBulk, &o.ShmBulk}, {&t.ShmChunk, &o.ShmChunk}, {&t.CMAMin, &o.CMAMin}, {&t.Summary, &o.Summary},
		{&t.ShmBatch, &o.ShmBatch},
	} {
		if *f.dst == 0 {
			*f.dst = *f.src
		}
	}
	if t.CMA == "" {
		t.CMA = o.CMA
	}
	if t.ShmFlush == 0 {
		t.ShmFlush = o.ShmFlush
	}
}

// ResolveTuning completes t (the program's settings) from the environment and the tuning
// file. A tuning file named by GORUN_TUNING must be readable; the default one is used only
// if it exists.
func ResolveTuning(t Tuning, env func(string) string) (Tuning, error) {
	if err := t.fromEnv(env); err != nil {
		return t, err
	}
	path, named := env("GORUN_TUNING"), true
	if path == "" {
		path, named = DefaultTuningPath(), false
	}
	t.Source = "built-in defaults"
	if path != "" {
		f, err := ReadTuningFile(path)
		switch {
		case err == nil:
			t.merge(f.Tuning)
			t.Source = fmt.Sprintf("%s (measured %s on %s)", path, f.Measured.Format("2006-01-02"), f.Machine)
		case named || !errors.Is(err, fs.ErrNotExist):
			return t, err
		}
	}
	if t.CMA == "" {
		t.CMA = "auto"
	}
	return t, nil
}

func (t *Tuning) fromEnv(env func(string) string) error {
	ints := []struct {
		name string
		dst  *int
	}{
		{"GORUN_EAGER_LIMIT", &t.SockEager},
		{"GORUN_SHM_EAGER", &t.ShmEager},
		{"GORUN_SHM_RING", &t.ShmRing},
		{"GORUN_SHM_BULK", &t.ShmBulk},
		{"GORUN_SHM_CHUNK", &t.ShmChunk},
		{"GORUN_CMA_MIN", &t.CMAMin},
		{"GORUN_SHM_SUMMARY_ABOVE", &t.Summary},
		{"GORUN_SHM_BATCH", &t.ShmBatch},
	}
	for _, f := range ints {
		v := env(f.name)
		if v == "" || *f.dst != 0 {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%s=%q: want a number of bytes", f.name, v)
		}
		*f.dst = n
	}
	if t.CMA == "" {
		t.CMA = env("GORUN_CMA")
	}
	switch t.CMA {
	case "", "auto", "on", "off":
	default:
		return fmt.Errorf("GORUN_CMA=%q: want auto, on or off", t.CMA)
	}
	if env("GORUN_SHM_FALLBACK") == "1" {
		t.ShmFallback = true
	}
	if v := env("GORUN_SHM_FLUSH"); v != "" && t.ShmFlush == 0 {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("GORUN_SHM_FLUSH=%q: want a positive duration", v)
		}
		t.ShmFlush = d
	}
	return nil
}
