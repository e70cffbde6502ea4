package tuning

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/transport/shm"
)

// noDefaultFile keeps the user's own tuning file out of a test.
func noDefaultFile(t *testing.T) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Every size, count and duration setting rejects what is out of its range, with an error that
// names the variable and the value.
func TestEnvOutOfRange(t *testing.T) {
	noDefaultFile(t)
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
			_, err := Resolve(Params{}, envOf(map[string]string{tc.env: tc.value}))
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
func TestShmSizesTogether(t *testing.T) {
	noDefaultFile(t)
	for _, tc := range []struct {
		name string
		prog Params
		env  map[string]string
		want string
	}{
		{"chunk above the default bulk pipe", Params{}, map[string]string{"GORUN_SHM_CHUNK": "1048576"},
			"a chunk of 1 MiB (GORUN_SHM_CHUNK) does not fit the bulk pipe of 512 KiB (GORUN_SHM_BULK unset: the default)"},
		{"chunk above the bulk pipe", Params{}, map[string]string{"GORUN_SHM_CHUNK": "65536", "GORUN_SHM_BULK": "32768"},
			"want chunk <= bulk"},
		{"program's chunk above the environment's pipe", Params{ShmChunk: 1 << 20}, map[string]string{"GORUN_SHM_BULK": "65536"},
			"does not fit the bulk pipe of 64 KiB (GORUN_SHM_BULK)"},
		{"eager above half the default ring", Params{}, map[string]string{"GORUN_SHM_EAGER": "200000"},
			"above half the ring of 256 KiB (GORUN_SHM_RING unset: the default)"},
		{"eager above half the ring", Params{}, map[string]string{"GORUN_SHM_EAGER": "8192", "GORUN_SHM_RING": "8192"},
			"want eager <= ring/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Resolve(tc.prog, envOf(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error with %q", err, tc.want)
			}
		})
	}
	// At the bounds, and zero (unset), all is well.
	env := map[string]string{"GORUN_SHM_RING": "67108864", "GORUN_SHM_EAGER": "33554432", "GORUN_SHM_BULK": "1073741824",
		"GORUN_SHM_CHUNK": "1073741824", "GORUN_EAGER_LIMIT": "1048576", "GORUN_SHM_SUMMARY_ABOVE": "0", "GORUN_SHM_FLUSH": "1s",
		"GORUN_SHM_BATCH": "65536", "GORUN_CMA_MIN": "1", "GORUN_SHM_FALLBACK": "0"}
	got, err := Resolve(Params{}, envOf(env))
	if err != nil || got.ShmRing != shm.MaxRingBytes || got.ShmBulk != shm.MaxBulkBytes || got.Summary != 0 || got.ShmFallback {
		t.Fatalf("at the bounds: %+v, %v", got, err)
	}
}

// The program's own values are held to the same bounds, named by their fields; a bad
// environment variable is reported even where the program's value wins.
func TestProgramOutOfRange(t *testing.T) {
	noDefaultFile(t)
	for _, tc := range []struct {
		prog Params
		want string
	}{
		{Params{ShmBulk: 1<<31 - 1}, "Tuning.ShmBulk=2147483647: want"},
		{Params{ShmRing: -1}, "Tuning.ShmRing=-1: want"},
		{Params{SockEager: 1 << 21}, "Tuning.SockEager=2097152: want"},
		{Params{Summary: -1}, "Tuning.Summary=-1: want a count"},
		{Params{ShmFlush: -1}, "Tuning.ShmFlush=-1 (-1ns): want a duration"},
		{Params{CMA: "always"}, `cma "always"`},
	} {
		if _, err := Resolve(tc.prog, envOf(nil)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.prog, err, tc.want)
		}
	}
	if _, err := Resolve(Params{ShmBulk: 1 << 20}, envOf(map[string]string{"GORUN_SHM_BULK": "huge"})); err == nil {
		t.Error("a garbage GORUN_SHM_BULK passed because the program set ShmBulk")
	}
}

func TestFileOutOfRange(t *testing.T) {
	noDefaultFile(t)
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
			_, err := Resolve(Params{}, envOf(map[string]string{"GORUN_TUNING": path}))
			if err == nil || !strings.Contains(err.Error(), "tuning file "+path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error naming the file, with %q", err, tc.want)
			}
		})
	}
	if err := WriteFile(filepath.Join(dir, "w.json"), File{Params: Params{ShmChunk: 1<<30 + 1}}); err == nil {
		t.Error("WriteFile wrote a chunk above 1 GiB")
	}
}

// The program's values win over the environment's, which win over the file's; a tuning file
// that GORUN_TUNING names must exist.
func TestPrecedenceAndFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/tuning.json"
	if err := WriteFile(path, File{Machine: "test", Params: Params{ShmEager: 4096, SockEager: 1000, CMA: "on"}}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GORUN_TUNING": path, "GORUN_EAGER_LIMIT": "2000"}
	got, err := Resolve(Params{ShmChunk: 8192}, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	// program > environment > file
	if got.ShmChunk != 8192 || got.SockEager != 2000 || got.ShmEager != 4096 || got.CMA != "on" {
		t.Fatalf("resolved %+v", got)
	}
	if !strings.HasPrefix(got.Source, path+" (measured ") {
		t.Errorf("source %q does not name the file", got.Source)
	}
	env["GORUN_TUNING"] = dir + "/missing.json"
	if _, err := Resolve(Params{}, envOf(env)); err == nil {
		t.Fatal("a named tuning file that does not exist was ignored")
	}
}

// FuzzTuningFile: a tuning file is bytes from anywhere. Parsing never panics, and a file that
// is accepted holds values a rank can use: within every bound, a chunk that fits the bulk
// pipe, and sizes the shared-memory transport can lay out. (What rank builds from them, and
// what Explain says of them, rank's FuzzExplain checks.)
func FuzzTuningFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"machine":"m","measured":"2024-01-02T00:00:00Z","tuning":{"shm_eager":4096,"sock_eager":8192,"cma":"on","cma_min":4096}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_ring":67108864,"shm_eager":33554432,"shm_bulk":1073741824,"shm_chunk":1073741824}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_bulk":4611686018427387904}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_flush_ns":-1,"shm_batch":3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := parseFile(b, "fuzz")
		if err != nil {
			return
		}
		p := file.Params
		for _, s := range settings() {
			if v := *s.at(&p); v != 0 && (v < s.min || v > s.max) {
				t.Fatalf("accepted %s=%d", s.key, v)
			}
		}
		if p.ShmFlush < 0 || p.ShmFlush > maxShmFlush {
			t.Fatalf("accepted shm_flush_ns=%d", p.ShmFlush)
		}
		switch p.CMA {
		case "", "auto", "on", "off":
		default:
			t.Fatalf("accepted cma=%q", p.CMA)
		}
		if err := p.checkShm(envName, true); err != nil {
			// Sizes the file leaves to the defaults may still clash with those it sets; a rank
			// reports that (Resolve) rather than using them.
			return
		}
		c := shm.Config{RingBytes: p.ShmRing, BulkBytes: p.ShmBulk, Chunk: p.ShmChunk, EagerLimit: p.ShmEager, Line: shm.MaxLine}
		if c.EagerMax() < 1 && p.ShmEager != 0 {
			t.Fatalf("eager max %d", c.EagerMax())
		}
	})
}
