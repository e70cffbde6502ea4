package launcher

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
)

func TestResolveProgram(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hello := write("hello/main.go", "package main\nfunc main() { println(\"hello\") }\n", 0o600)
	broken := write("broken/main.go", "package main\nfunc main() { undefined() }\n", 0o600)
	lib := write("lib/go.mod", "module lib\ngo 1.26\n", 0o600)
	write("lib/lib.go", "package lib\nfunc F() {}\n", 0o600)
	data := write("data", "x", 0o600)
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) in PATH")
	}

	for _, tc := range []struct {
		name, program string
		built         bool   // a fresh binary in a temporary directory
		want          string // the exact path, when not built
		wantErr       string
	}{
		{"package dir", "./testdata/lines", true, "", ""},
		{"go file", hello, true, "", ""},
		{"dir without module", filepath.Dir(hello), false, "", "go.mod file not found"}, // as go run
		{"executable path", bin.sleeper, false, bin.sleeper, ""},
		{"PATH lookup", "true", false, truePath, ""},
		{"compile error", broken, false, "", "undefined: undefined"},
		{"library package", filepath.Dir(lib), false, "", "not a main package"},
		{"not executable", data, false, "", "not an executable file"},
		{"missing", filepath.Join(dir, "nope"), false, "", "no such file"},
		{"missing name", "gorun-no-such-program", false, "", "no such file"},
		{"empty", "", false, "", "no program"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			harness.CheckLeaks(t)
			path, cleanup, err := ResolveProgram(ctx, tc.program)
			if cleanup == nil {
				t.Fatal("nil cleanup")
			}
			defer cleanup()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolveProgram(%q) = %q, %v; want an error containing %q", tc.program, path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.built {
				if path != tc.want {
					t.Errorf("ResolveProgram(%q) = %q, want %q", tc.program, path, tc.want)
				}
				return
			}
			if !strings.HasPrefix(path, os.TempDir()) {
				t.Errorf("built %q outside the temporary directory", path)
			}
			if out, err := exec.Command(path, "-n", "0").CombinedOutput(); err != nil {
				t.Errorf("running the build: %v\n%s", err, out)
			}
			cleanup()
			if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
				t.Errorf("cleanup left %s (%v)", filepath.Dir(path), err)
			}
		})
	}
}

func TestResolveProgramCanceled(t *testing.T) {
	harness.CheckLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, cleanup, err := ResolveProgram(ctx, "./testdata/lines")
	defer cleanup()
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("ResolveProgram with a canceled context = %v", err)
	}
	if ents, _ := os.ReadDir(os.TempDir()); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}
