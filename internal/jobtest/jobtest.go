// Package jobtest runs real multi-process gorun jobs from tests: it builds a rank program once
// per test binary (with the race detector if the test binary has it), runs it through the
// launcher with a bound on the run time, and fails the test if the job leaves anything behind
// (processes, descriptors, goroutines, /dev/shm or TMPDIR entries). Building and the leak
// check are package harness's, which the launcher's own tests share.
//
// A package using it calls Main from its TestMain so the built programs are removed.
package jobtest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/launcher"
)

// Main runs the tests and removes what Program built (harness.Main).
func Main(m *testing.M) { harness.Main(m, nil) }

// Program builds the Go package pkg (a path relative to the test's package directory, like
// "./testdata/e2e") once and returns the binary's path (harness.Program).
func Program(t testing.TB, pkg string) string {
	t.Helper()
	return harness.Program(t, pkg)
}

// Race reports whether the race detector is on (its instrumentation allocates).
const Race = harness.Race

// Job is one run.
type Job struct {
	N       int
	Args    []string
	Env     []string      // KEY=VALUE for every rank
	Timeout time.Duration // bound on the whole job (default 2 minutes)
	Grace   time.Duration // launcher's grace period after a failure (default: launcher's)
	// Hosts spreads the ranks over hosts that are all this machine: each rank is started
	// here (the launch command is env, with the host's name, which nothing reads), and the
	// launcher's node map makes each host a node of its own, so that ranks of one host share
	// memory and reach the others over TCP, as on a cluster. nil: one host.
	Hosts []launcher.Host
}

// Result is what a job printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Err            error // nil, or the launcher's *launcher.JobError
	Took           time.Duration
}

// Run runs job with prog and checks right afterwards that nothing is left behind
// (harness.Snapshot.Check).
func Run(t testing.TB, prog string, job Job) Result {
	t.Helper()
	if job.Timeout == 0 {
		job.Timeout = 2 * time.Minute
	}
	leaks := harness.Take(t)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), job.Timeout+10*time.Second)
	defer cancel()
	start := time.Now()
	err := launcher.Run(ctx, launcher.Config{
		N: job.N, Program: prog, Args: job.Args, Env: job.Env,
		Stdout: &stdout, Stderr: &stderr, Timeout: job.Timeout, Grace: job.Grace,
		Hosts: job.Hosts, LaunchCmd: fakeHostCmd(job.Hosts), PMIAddr: fakeHostPMI(job.Hosts),
	})
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err, Took: time.Since(start)}
	failed := t.Failed()
	leaks.Check(t)
	if t.Failed() && !failed {
		t.Logf("left behind by the job %d × %v", job.N, job.Args)
	}
	return res
}

// fakeHostCmd is the launch command of Job.Hosts ("" without hosts: the launcher's own).
func fakeHostCmd(hosts []launcher.Host) string {
	if hosts == nil {
		return ""
	}
	return "env GORUN_FAKE_HOST={host}"
}

// fakeHostPMI is the address the ranks of Job.Hosts connect back to.
func fakeHostPMI(hosts []launcher.Host) string {
	if hosts == nil {
		return ""
	}
	return "127.0.0.1"
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
