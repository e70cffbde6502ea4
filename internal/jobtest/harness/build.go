package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds one go build (several race-enabled programs on a loaded 2-core machine).
const buildTimeout = 10 * time.Minute

// builds is what Main set up and what Build has built. The mutex serializes builds: a
// package asked for twice at once is built once.
var builds struct {
	sync.Mutex
	root string            // Main's directory; builds go to root/bin/N
	tmp  string            // the TMPDIR Main set
	n    int               // build directories made so far
	bins map[string]string // package (absolute directory or import path) → binary
	errs map[string]error  // package → why its build failed (not tried again)
}

// Program is Programs for one package.
func Program(t testing.TB, pkg string) string {
	t.Helper()
	return Programs(t, pkg)[0]
}

// Programs builds the Go main packages pkgs, each once per test binary, and returns their
// binaries' paths in the order of pkgs; it fails the test if a build fails. See Build.
func Programs(t testing.TB, pkgs ...string) []string {
	t.Helper()
	bins, err := Build(pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	return bins
}

// Build builds the Go main packages pkgs, each once per test binary, and returns their
// binaries' paths in the order of pkgs. A package is a directory relative to the test's
// package (./testdata/sleeper, ../cmd/gorun, .), an absolute one, or an import path. Those not
// built yet are built together by one go build, with -race if the test binary has the race
// detector, into a directory of their own under Main's, which Main removes; so two of them
// may not have the same last element. Build needs Main.
func Build(pkgs ...string) ([]string, error) {
	builds.Lock()
	defer builds.Unlock()
	if builds.root == "" {
		return nil, errors.New("harness: building a program needs harness.Main (or jobtest.Main) in TestMain, which removes it")
	}
	keys := make([]string, len(pkgs))
	var missing []string
	byName := make(map[string]string) // binary name → package, among missing
	for i, p := range pkgs {
		k, err := packageKey(p)
		if err != nil {
			return nil, err
		}
		keys[i] = k
		if err := builds.errs[k]; err != nil {
			return nil, err
		}
		if _, ok := builds.bins[k]; ok || byName[binaryName(k)] == k {
			continue
		}
		if other, ok := byName[binaryName(k)]; ok {
			return nil, fmt.Errorf("harness: %s and %s both build %s: build them in separate calls", other, k, binaryName(k))
		}
		byName[binaryName(k)] = k
		missing = append(missing, k)
	}
	if len(missing) > 0 {
		if err := buildMissing(missing); err != nil {
			return nil, err
		}
	}
	bins := make([]string, len(keys))
	for i, k := range keys {
		bins[i] = builds.bins[k]
	}
	return bins, nil
}

// buildMissing builds pkgs (none built yet, no two with the same binary name) by one go
// build into a fresh directory and records them. builds is locked.
func buildMissing(pkgs []string) error {
	builds.n++
	dir := filepath.Join(builds.root, "bin", strconv.Itoa(builds.n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if Race {
		args = append(args, "-race")
	}
	args = append(args, pkgs...)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		err = fmt.Errorf("harness: go %s: %v\n%s", strings.Join(args, " "), err, out)
		if builds.errs == nil {
			builds.errs = make(map[string]error)
		}
		for _, k := range pkgs {
			builds.errs[k] = err
		}
		return err
	}
	if builds.bins == nil {
		builds.bins = make(map[string]string)
	}
	for _, k := range pkgs {
		bin := filepath.Join(dir, binaryName(k))
		if emulator != "" {
			if err := wrapInEmulator(bin); err != nil {
				return err
			}
		}
		builds.bins[k] = bin
	}
	return nil
}

// emulator is GORUN_TEST_EMULATOR: the user-mode emulator (qemu-aarch64) that runs the test
// binary (go test -exec) where the kernel has no binfmt handler for its architecture. The
// programs the harness builds are of the same architecture, so they must be started through
// it too.
var emulator = os.Getenv("GORUN_TEST_EMULATOR")

// wrapInEmulator moves the program at bin to bin.prog and puts at bin a shell script that
// runs it under emulator, so that whoever executes bin (the launcher, a test) runs it.
// The script execs: the process's pid is the program's.
func wrapInEmulator(bin string) error {
	prog := bin + ".prog"
	if err := os.Rename(bin, prog); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	script := fmt.Sprintf("#!/bin/sh\nexec %s %s \"$@\"\n", emulator, prog)
	if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	return nil
}

// packageKey is how Build names pkg: its absolute directory if pkg is a directory, else the
// import path.
func packageKey(pkg string) (string, error) {
	if pkg == "." || pkg == ".." || strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../") || filepath.IsAbs(pkg) {
		abs, err := filepath.Abs(pkg)
		if err != nil {
			return "", fmt.Errorf("harness: %w", err)
		}
		return abs, nil
	}
	return pkg, nil
}

// binaryName is the name go build gives the binary of the package key names: its last
// element.
func binaryName(key string) string { return path.Base(filepath.ToSlash(key)) }
