package rank

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/transport/shm"
)

// noDefaultTuningFile keeps the user's own tuning file out of a test.
func noDefaultTuningFile(t *testing.T) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Every size, count and duration setting rejects what is out of its range, with an error that
// names the variable and the value.
func TestTuningEnvOutOfRange(t *testing.T) {
	noDefaultTuningFile(t)
	for _, tc := range []struct {
		name, env, value string
		want             string // in the error besides the variable and the value
	}{
		{"bulk 2^62", "GORUN_SHM_BULK", "4611686018427387904", "to 1073741824 (1 GiB)"},
		{"bulk above 1 GiB", "GORUN_SHM_BULK", "1073741825", "1 GiB"},
		{"bulk too small", "GORUN_SHM_BULK", "100", "from 4096 (4 KiB)"},
		{"bulk negative", "GORUN_SHM_BULK", "-1", "want"},
		{"bulk garbage", "GORUN_SHM_BULK", "1M", "a number of bytes"},
		{"bulk beyond int", "GORUN_SHM_BULK", "99999999999999999999", "a number of bytes"},
		{"ring above 64 MiB", "GORUN_SHM_RING", "67108865", "64 MiB"},
		{"ring too small", "GORUN_SHM_RING", "4096", "8 KiB"},
		{"ring negative", "GORUN_SHM_RING", "-4096", "want"},
		{"ring garbage", "GORUN_SHM_RING", "0x1000", "want"},
		{"chunk above 1 GiB", "GORUN_SHM_CHUNK", "2147483648", "1 GiB"},
		{"chunk too small", "GORUN_SHM_CHUNK", "1", "from 64"},
		{"chunk negative", "GORUN_SHM_CHUNK", "-64", "want"},
		{"chunk garbage", "GORUN_SHM_CHUNK", "64k", "want"},
		{"shm eager above half the largest ring", "GORUN_SHM_EAGER", "33554433", "32 MiB"},
		{"shm eager negative", "GORUN_SHM_EAGER", "-1", "want"},
		{"shm eager garbage", "GORUN_SHM_EAGER", " 12", "want"},
		{"socket eager above 1 MiB", "GORUN_EAGER_LIMIT", "1048577", "1 MiB"},
		{"socket eager negative", "GORUN_EAGER_LIMIT", "-1", "want"},
		{"socket eager garbage", "GORUN_EAGER_LIMIT", "big", "want"},
		{"cma min negative", "GORUN_CMA_MIN", "-1", "from 1"},
		{"cma min garbage", "GORUN_CMA_MIN", "4 KiB", "want"},
		{"summary above every rank", "GORUN_SHM_SUMMARY_ABOVE", "65537", "a count from 1 to 65536"},
		{"summary negative", "GORUN_SHM_SUMMARY_ABOVE", "-1", "a count"},
		{"summary garbage", "GORUN_SHM_SUMMARY_ABOVE", "all", "a count"},
		{"batch too big", "GORUN_SHM_BATCH", "65537", "a count from 1 to 65536"},
		{"batch negative", "GORUN_SHM_BATCH", "-2", "a count"},
		{"batch garbage", "GORUN_SHM_BATCH", "8.0", "a count"},
		{"flush zero", "GORUN_SHM_FLUSH", "0", "above 0"},
		{"flush negative", "GORUN_SHM_FLUSH", "-1ms", "above 0"},
		{"flush too long", "GORUN_SHM_FLUSH", "2s", "at most 1s"},
		{"flush beyond a duration", "GORUN_SHM_FLUSH", "9999999999h", "a duration"},
		{"flush garbage", "GORUN_SHM_FLUSH", "50", "a duration"},
		{"cma garbage", "GORUN_CMA", "yes", "auto, on or off"},
		{"fallback garbage", "GORUN_SHM_FALLBACK", "yes", "1 or 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ResolveTuning(Tuning{}, envOf(map[string]string{tc.env: tc.value}))
			var se *SettingError
			if !errors.As(err, &se) || se.Name != tc.env || se.Value != tc.value || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s=%q: %v; want a SettingError naming them, with %q", tc.env, tc.value, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.env+"="+tc.value+": want ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

// The sizes that work together are checked together, defaults included, wherever each came
// from.
func TestTuningShmSizesTogether(t *testing.T) {
	noDefaultTuningFile(t)
	for _, tc := range []struct {
		name string
		prog Tuning
		env  map[string]string
		want string
	}{
		{"chunk above the default bulk pipe", Tuning{}, map[string]string{"GORUN_SHM_CHUNK": "1048576"},
			"a chunk of 1 MiB (GORUN_SHM_CHUNK) does not fit the bulk pipe of 512 KiB (GORUN_SHM_BULK unset: the default)"},
		{"chunk above the bulk pipe", Tuning{}, map[string]string{"GORUN_SHM_CHUNK": "65536", "GORUN_SHM_BULK": "32768"},
			"want chunk <= bulk"},
		{"program's chunk above the environment's pipe", Tuning{ShmChunk: 1 << 20}, map[string]string{"GORUN_SHM_BULK": "65536"},
			"does not fit the bulk pipe of 64 KiB (GORUN_SHM_BULK)"},
		{"eager above half the default ring", Tuning{}, map[string]string{"GORUN_SHM_EAGER": "200000"},
			"above half the ring of 256 KiB (GORUN_SHM_RING unset: the default)"},
		{"eager above half the ring", Tuning{}, map[string]string{"GORUN_SHM_EAGER": "8192", "GORUN_SHM_RING": "8192"},
			"want eager <= ring/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ResolveTuning(tc.prog, envOf(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error with %q", err, tc.want)
			}
		})
	}
	// At the bounds, and zero (unset), all is well.
	env := map[string]string{"GORUN_SHM_RING": "67108864", "GORUN_SHM_EAGER": "33554432", "GORUN_SHM_BULK": "1073741824",
		"GORUN_SHM_CHUNK": "1073741824", "GORUN_EAGER_LIMIT": "1048576", "GORUN_SHM_SUMMARY_ABOVE": "0", "GORUN_SHM_FLUSH": "1s",
		"GORUN_SHM_BATCH": "65536", "GORUN_CMA_MIN": "1", "GORUN_SHM_FALLBACK": "0"}
	got, err := ResolveTuning(Tuning{}, envOf(env))
	if err != nil || got.ShmRing != shm.MaxRingBytes || got.ShmBulk != shm.MaxBulkBytes || got.Summary != 0 || got.ShmFallback {
		t.Fatalf("at the bounds: %+v, %v", got, err)
	}
}

// The program's own values are held to the same bounds, named by their fields; a bad
// environment variable is reported even where the program's value wins.
func TestTuningProgramOutOfRange(t *testing.T) {
	noDefaultTuningFile(t)
	for _, tc := range []struct {
		prog Tuning
		want string
	}{
		{Tuning{ShmBulk: 1<<31 - 1}, "Tuning.ShmBulk=2147483647: want"},
		{Tuning{ShmRing: -1}, "Tuning.ShmRing=-1: want"},
		{Tuning{SockEager: 1 << 21}, "Tuning.SockEager=2097152: want"},
		{Tuning{Summary: -1}, "Tuning.Summary=-1: want a count"},
		{Tuning{ShmFlush: -1}, "Tuning.ShmFlush=-1 (-1ns): want a duration"},
		{Tuning{CMA: "always"}, `cma "always"`},
	} {
		if _, err := ResolveTuning(tc.prog, envOf(nil)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.prog, err, tc.want)
		}
	}
	if _, err := ResolveTuning(Tuning{ShmBulk: 1 << 20}, envOf(map[string]string{"GORUN_SHM_BULK": "huge"})); err == nil {
		t.Error("a garbage GORUN_SHM_BULK passed because the program set ShmBulk")
	}
}

func TestTuningFileOutOfRange(t *testing.T) {
	noDefaultTuningFile(t)
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, want string }{
		{"bulk 2^62", `{"version":1,"tuning":{"shm_bulk":4611686018427387904}}`, "shm_bulk=4611686018427387904: want"},
		{"ring negative", `{"version":1,"tuning":{"shm_ring":-1}}`, "shm_ring=-1: want"},
		{"chunk above the file's bulk", `{"version":1,"tuning":{"shm_chunk":65536,"shm_bulk":8192}}`, "want chunk <= bulk"},
		{"eager above half the file's ring", `{"version":1,"tuning":{"shm_eager":65536,"shm_ring":65536}}`, "want eager <= ring/2"},
		{"flush too long", `{"version":1,"tuning":{"shm_flush_ns":2000000000}}`, "shm_flush_ns=2000000000 (2s)"},
		{"batch too big", `{"version":1,"tuning":{"shm_batch":100000}}`, "shm_batch=100000: want a count"},
		{"beyond int", `{"version":1,"tuning":{"shm_bulk":1e30}}`, "cannot unmarshal"},
		{"a string", `{"version":1,"tuning":{"shm_bulk":"1G"}}`, "cannot unmarshal"},
		{"version", `{"version":2}`, "version 2, want 1"},
		{"garbage", `{"version":1,`, "unexpected end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ResolveTuning(Tuning{}, envOf(map[string]string{"GORUN_TUNING": path}))
			if err == nil || !strings.Contains(err.Error(), "tuning file "+path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error naming the file, with %q", err, tc.want)
			}
		})
	}
	if err := WriteTuningFile(filepath.Join(dir, "w.json"), TuningFile{Tuning: Tuning{ShmChunk: 1<<30 + 1}}); err == nil {
		t.Error("WriteTuningFile wrote a chunk above 1 GiB")
	}
}

// FuzzTuningFile: a tuning file is bytes from anywhere. Parsing never panics, and a file that
// is accepted holds values a rank can use: within every bound, a chunk that fits the bulk
// pipe, and sizes the shared-memory transport can lay out.
func FuzzTuningFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"machine":"m","measured":"2024-01-02T00:00:00Z","tuning":{"shm_eager":4096,"sock_eager":8192,"cma":"on","cma_min":4096}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_ring":67108864,"shm_eager":33554432,"shm_bulk":1073741824,"shm_chunk":1073741824}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_bulk":4611686018427387904}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_flush_ns":-1,"shm_batch":3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := parseTuningFile(b, "fuzz")
		if err != nil {
			return
		}
		tun := file.Tuning
		for _, s := range tuningSettings() {
			if v := *s.at(&tun); v != 0 && (v < s.min || v > s.max) {
				t.Fatalf("accepted %s=%d", s.key, v)
			}
		}
		if tun.ShmFlush < 0 || tun.ShmFlush > maxShmFlush {
			t.Fatalf("accepted shm_flush_ns=%d", tun.ShmFlush)
		}
		if err := tun.checkShm(envName, true); err != nil {
			// Sizes the file leaves to the defaults may still clash with those it sets; a rank
			// reports that (ResolveTuning) rather than using them.
			return
		}
		c := shmConfig(tun, false)
		c.Line = shm.MaxLine
		if c.EagerMax() < 1 && tun.ShmEager != 0 {
			t.Fatalf("eager max %d", c.EagerMax())
		}
		if err := Explain(io.Discard, tun, ExplainSizes); err != nil {
			t.Fatal(err)
		}
	})
}
