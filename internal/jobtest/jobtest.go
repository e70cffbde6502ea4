// Package jobtest runs real multi-process gorun jobs from tests: it builds a rank program once
// per test binary (with the race detector if the test binary has it), runs it through the
// launcher with a bound on the run time, and fails the test if the job leaves processes or
// /dev/shm entries behind.
//
// A package using it calls Main from its TestMain so the built programs are removed.
package jobtest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/shmname"
	"github.com/gorun-hpc/gorun/launcher"
)

var (
	mu      sync.Mutex
	dir     string                // where programs are built; removed by Main
	builds  = map[string]string{} // package → binary
	buildMu sync.Mutex
)

// Main runs the tests and removes what Program built.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	mu.Unlock()
	os.Exit(code)
}

// Program builds the Go package pkg (a path relative to the test's package directory, like
// "./testdata/e2e") once and returns the binary's path.
func Program(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	abs, err := filepath.Abs(pkg)
	if err != nil {
		t.Fatal(err)
	}
	if bin, ok := builds[abs]; ok {
		return bin
	}
	mu.Lock()
	if dir == "" {
		dir, err = os.MkdirTemp("", "gorun-jobtest-")
	}
	d := dir
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(d, filepath.Base(abs))
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", append(args, abs)...).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	builds[abs] = bin
	return bin
}

// Job is one run.
type Job struct {
	N       int
	Args    []string
	Env     []string      // KEY=VALUE for every rank
	Timeout time.Duration // bound on the whole job (default 2 minutes)
	Grace   time.Duration // launcher's grace period after a failure (default: launcher's)
}

// Result is what a job printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Err            error // nil, or the launcher's *launcher.JobError
	Took           time.Duration
}

// Run runs job with prog and checks that nothing is left behind afterwards.
func Run(t testing.TB, prog string, job Job) Result {
	t.Helper()
	if job.Timeout == 0 {
		job.Timeout = 2 * time.Minute
	}
	before := shmEntries()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), job.Timeout+10*time.Second)
	defer cancel()
	start := time.Now()
	err := launcher.Run(ctx, launcher.Config{
		N: job.N, Program: prog, Args: job.Args, Env: job.Env,
		Stdout: &stdout, Stderr: &stderr, Timeout: job.Timeout, Grace: job.Grace,
	})
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err, Took: time.Since(start)}
	if left := processesRunning(prog); len(left) > 0 {
		t.Errorf("job %v left processes running: %v", job.Args, left)
	}
	if added := newEntries(before, shmEntries()); len(added) > 0 {
		t.Errorf("job %v left /dev/shm entries: %v", job.Args, added)
		for _, e := range added {
			os.Remove(filepath.Join("/dev/shm", e))
		}
	}
	return res
}

// MustSucceed runs job and fails the test unless every rank exited 0.
func MustSucceed(t testing.TB, prog string, job Job) Result {
	t.Helper()
	res := Run(t, prog, job)
	if res.Err != nil {
		t.Fatalf("job %d × %v failed after %v: %v\nstdout:\n%s\nstderr:\n%s", job.N, job.Args, res.Took, res.Err, res.Stdout, res.Stderr)
	}
	return res
}

// shmEntries lists gorun's entries in /dev/shm (other software's, an MPI library's running
// beside the tests, are none of the tests' business).
func shmEntries() map[string]bool {
	m := map[string]bool{}
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if strings.HasPrefix("/dev/shm/"+e.Name(), shmname.Prefix) {
			m[e.Name()] = true
		}
	}
	return m
}

func newEntries(before, after map[string]bool) []string {
	var added []string
	for e := range after {
		if !before[e] {
			added = append(added, e)
		}
	}
	return added
}

// processesRunning lists the pids whose executable is prog.
func processesRunning(prog string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		exe, err := os.Readlink(p)
		if err != nil {
			continue
		}
		if strings.TrimSuffix(exe, " (deleted)") == prog {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}
