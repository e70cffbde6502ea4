package tuning

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
	"github.com/gorun-hpc/gorun/transport/shm"
)

// Params holds the thresholds and sizes that choose a protocol per message size. Each field
// is set, in order of precedence, by the program (rank.Config.Tuning), the environment (the
// GORUN_* names below), the tuning file that gorun-bench model writes (GORUN_TUNING, else
// DefaultPath), or the built-in defaults (measured on the machine named in
// docs/benchmarks.md). Zero means "not set". Every number has bounds (settings: e.g. a
// ring of 8 KiB to 64 MiB, a bulk pipe of 4 KiB to 1 GiB), and the result must have a chunk
// no larger than the bulk pipe and an eager limit at most half the ring; Resolve
// reports a value outside them as a SettingError naming it.
type Params struct {
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

// File is what gorun-bench model writes: the chosen thresholds and the measurements
// behind them.
type File struct {
	Version  int       `json:"version"`
	Machine  string    `json:"machine"`  // what it was measured on
	Measured time.Time `json:"measured"` // when
	Params   Params    `json:"tuning"`
	// Model holds the fitted cost model per path, for reference (gorun-bench model explains it).
	Model json.RawMessage `json:"model,omitempty"`
}

const fileVersion = 1

// DefaultPath is where gorun-bench model writes and ranks look for a tuning file when
// GORUN_TUNING is unset: $XDG_CONFIG_HOME/gorun/tuning.json, else ~/.config/gorun/tuning.json.
func DefaultPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "gorun", "tuning.json")
}

// ReadFile reads a tuning file. Its values are checked like the environment's.
func ReadFile(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, err
	}
	return parseFile(b, path)
}

// parseFile decodes and checks the tuning file named name, whose bytes are b; nothing in
// it is trusted.
func parseFile(b []byte, name string) (File, error) {
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, fmt.Errorf("tuning file %s: %w", name, err)
	}
	if f.Version != fileVersion {
		return File{}, fmt.Errorf("tuning file %s: version %d, want %d", name, f.Version, fileVersion)
	}
	if err := f.Params.check(fileKey); err != nil {
		return File{}, fmt.Errorf("tuning file %s: %w", name, err)
	}
	return f, nil
}

// WriteFile writes f to path (creating its directory), atomically.
func WriteFile(path string, f File) error {
	f.Version = fileVersion
	if err := f.Params.check(fileKey); err != nil {
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

// setting is one of Params' numbers and its bounds. Zero means unset; any other value
// outside [min, max] is an error. The shared-memory bounds are the transport's (shm.Max…),
// less where a smaller value is of no use.
type setting struct {
	env, key, field string // GORUN_SHM_BULK; shm_bulk in a tuning file; ShmBulk, a field of Params
	min, max        int
	bytes           bool // a size (shown in KiB, MiB), else a count
	at              func(*Params) *int
}

// Bounds of the settings, beside the transport's.
const (
	minShmRing  = 8 << 10 // 8 lines of the longest line shm allows
	minShmBulk  = 4 << 10
	minShmChunk = 64
	maxShmBatch = 1 << 16
	maxShmFlush = time.Second
)

// maxMessage is the largest message a Go slice can hold: no bound on CMAMin.
const maxMessage = int(^uint(0) >> 1)

func settings() []setting {
	return []setting{
		{"GORUN_EAGER_LIMIT", "sock_eager", "SockEager", 1, transport.MaxEager, true, func(t *Params) *int { return &t.SockEager }},
		{"GORUN_SHM_EAGER", "shm_eager", "ShmEager", 1, shm.MaxRingBytes / 2, true, func(t *Params) *int { return &t.ShmEager }},
		{"GORUN_SHM_RING", "shm_ring", "ShmRing", minShmRing, shm.MaxRingBytes, true, func(t *Params) *int { return &t.ShmRing }},
		{"GORUN_SHM_BULK", "shm_bulk", "ShmBulk", minShmBulk, shm.MaxBulkBytes, true, func(t *Params) *int { return &t.ShmBulk }},
		{"GORUN_SHM_CHUNK", "shm_chunk", "ShmChunk", minShmChunk, shm.MaxBulkBytes, true, func(t *Params) *int { return &t.ShmChunk }},
		{"GORUN_CMA_MIN", "cma_min", "CMAMin", 1, maxMessage, true, func(t *Params) *int { return &t.CMAMin }},
		{"GORUN_SHM_SUMMARY_ABOVE", "summary_above", "Summary", 1, shm.MaxLocalRanks, false, func(t *Params) *int { return &t.Summary }},
		{"GORUN_SHM_BATCH", "shm_batch", "ShmBatch", 1, maxShmBatch, false, func(t *Params) *int { return &t.ShmBatch }},
	}
}

// want says what the setting accepts.
func (s setting) want() string {
	if !s.bytes {
		return fmt.Sprintf("a count from %d to %d", s.min, s.max)
	}
	if s.max == maxMessage {
		return fmt.Sprintf("a number of bytes from %d", s.min)
	}
	return fmt.Sprintf("a number of bytes from %s to %s", rangeText(s.min), rangeText(s.max))
}

// rangeText is BytesText with the exact number beside a rounded one.
func rangeText(n int) string {
	if t := BytesText(n); t != fmt.Sprintf("%d B", n) {
		return fmt.Sprintf("%d (%s)", n, t)
	}
	return strconv.Itoa(n)
}

// SettingError is a setting (an environment variable, a tuning file's entry, a field of the
// program's rank.Config) whose value is not one it accepts. rank reports its own settings
// (GORUN_SPIN, Config.ConnectTimeout, …) with it too.
type SettingError struct {
	Name  string // the setting: GORUN_SHM_BULK, shm_bulk, Tuning.ShmBulk
	Value string // the value given
	Want  string // what it accepts
}

func (e *SettingError) Error() string { return fmt.Sprintf("%s=%s: want %s", e.Name, e.Value, e.Want) }

// The names of a setting by where its value came from. The program's values are named as the
// fields of rank.Config's Tuning, where a program sets them.
func envName(s setting) string     { return s.env }
func fileKey(s setting) string     { return s.key }
func programName(s setting) string { return "Tuning." + s.field }

// check validates t's values one by one, naming each setting as name gives it, and the
// shared-memory sizes that t sets together (see checkShm).
func (t *Params) check(name func(setting) string) error {
	for _, s := range settings() {
		if v := *s.at(t); v != 0 && (v < s.min || v > s.max) {
			return &SettingError{Name: name(s), Value: strconv.Itoa(v), Want: s.want()}
		}
	}
	if t.ShmFlush != 0 && (t.ShmFlush < 0 || t.ShmFlush > maxShmFlush) {
		n := setting{env: "GORUN_SHM_FLUSH", key: "shm_flush_ns", field: "ShmFlush"}
		return &SettingError{Name: name(n), Value: fmt.Sprintf("%d (%v)", int64(t.ShmFlush), t.ShmFlush), Want: "a duration above 0 and at most " + maxShmFlush.String()}
	}
	switch t.CMA {
	case "", "auto", "on", "off":
	default:
		return fmt.Errorf("cma %q: want auto, on or off", t.CMA)
	}
	return t.checkShm(name, false)
}

// checkShm checks the shared-memory sizes against each other: a chunk must fit the bulk pipe
// (or a sender would wait forever for room) and an eager message half a ring. With defaults,
// an unset size is the transport's default; without, only sizes t sets both of are compared.
// name names a setting that is set.
func (t *Params) checkShm(name func(setting) string, defaults bool) error {
	type size struct {
		name string
		v    int
	}
	byField := map[string]setting{}
	for _, s := range settings() {
		byField[s.field] = s
	}
	get := func(field string, def int) (size, bool) {
		s := byField[field]
		if v := *s.at(t); v != 0 {
			return size{name(s), v}, true
		}
		return size{s.env + " unset: the default", def}, defaults
	}
	ring, ringOK := get("ShmRing", shm.DefaultRingBytes)
	bulk, bulkOK := get("ShmBulk", shm.DefaultBulkBytes)
	chunk, chunkOK := get("ShmChunk", shm.DefaultChunk)
	eager, eagerOK := get("ShmEager", shm.DefaultEagerLimit)
	switch {
	case chunkOK && bulkOK && chunk.v > bulk.v:
		return fmt.Errorf("a chunk of %s (%s) does not fit the bulk pipe of %s (%s): want chunk <= bulk",
			BytesText(chunk.v), chunk.name, BytesText(bulk.v), bulk.name)
	case eagerOK && ringOK && eager.v > ring.v/2:
		return fmt.Errorf("an eager limit of %s (%s) is above half the ring of %s (%s): want eager <= ring/2",
			BytesText(eager.v), eager.name, BytesText(ring.v), ring.name)
	}
	return nil
}

// merge fills t's unset fields from o.
func (t *Params) merge(o Params) {
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

// Resolve completes t (the program's settings) from the environment and the tuning
// file, and checks every value: each within its bounds (SettingError), and the shared-memory
// sizes that result consistent with each other. A tuning file named by GORUN_TUNING must be
// readable; the default one is used only if it exists.
func Resolve(t Params, env func(string) string) (Params, error) {
	if err := t.check(programName); err != nil {
		return t, err
	}
	if err := t.fromEnv(env); err != nil {
		return t, err
	}
	path, named := env("GORUN_TUNING"), true
	if path == "" {
		path, named = DefaultPath(), false
	}
	t.Source = "built-in defaults"
	from := "shared-memory settings"
	if path != "" {
		f, err := ReadFile(path)
		switch {
		case err == nil:
			t.merge(f.Params)
			t.Source = fmt.Sprintf("%s (measured %s on %s)", path, f.Measured.Format("2006-01-02"), f.Machine)
			from += " with tuning file " + path
		case named || !errors.Is(err, fs.ErrNotExist):
			return t, err
		}
	}
	// The values may come from the program, the environment and the file: name them by
	// their variables.
	if err := t.checkShm(envName, true); err != nil {
		return t, fmt.Errorf("%s: %w", from, err)
	}
	if t.CMA == "" {
		t.CMA = "auto"
	}
	return t, nil
}

// fromEnv fills t's unset fields from the environment. Every variable that is set is checked,
// whether or not the program's value takes precedence over it.
func (t *Params) fromEnv(env func(string) string) error {
	for _, s := range settings() {
		v := env(s.env)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n != 0 && (n < s.min || n > s.max) {
			return &SettingError{Name: s.env, Value: v, Want: s.want()}
		}
		if dst := s.at(t); *dst == 0 {
			*dst = n
		}
	}
	if t.CMA == "" {
		t.CMA = env("GORUN_CMA")
	}
	switch t.CMA {
	case "", "auto", "on", "off":
	default:
		return &SettingError{Name: "GORUN_CMA", Value: t.CMA, Want: "auto, on or off"}
	}
	switch v := env("GORUN_SHM_FALLBACK"); v {
	case "1":
		t.ShmFallback = true
	case "", "0":
	default:
		return &SettingError{Name: "GORUN_SHM_FALLBACK", Value: v, Want: "1 or 0"}
	}
	if v := env("GORUN_SHM_FLUSH"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxShmFlush {
			return &SettingError{Name: "GORUN_SHM_FLUSH", Value: v, Want: "a duration above 0 and at most " + maxShmFlush.String()}
		}
		if t.ShmFlush == 0 {
			t.ShmFlush = d
		}
	}
	return nil
}

// BytesText writes a byte count the way gorun's messages do: in the largest of GiB, MiB
// and KiB that divides it, else in bytes.
func BytesText(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
