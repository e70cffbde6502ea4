package launcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/internal/syncbuf"
	"github.com/gorun-hpc/gorun/topology"
	"golang.org/x/sys/unix"
)

// The test programs under testdata/, built together by TestMain.
var bin struct {
	sleeper, lines, cat, pmiexchange, placement, shmleak, dier string
}

// TestMain builds the test rank programs and runs the tests in harness's private directory
// (also their TMPDIR, where ResolveProgram builds), which it removes afterwards.
func TestMain(m *testing.M) {
	harness.Main(m, func() error {
		p, err := harness.Build("./testdata/sleeper", "./testdata/lines", "./testdata/cat",
			"./testdata/pmiexchange", "./testdata/placement", "./testdata/shmleak", "./testdata/dier")
		if err != nil {
			return err
		}
		bin.sleeper, bin.lines, bin.cat, bin.pmiexchange, bin.placement, bin.shmleak, bin.dier =
			p[0], p[1], p[2], p[3], p[4], p[5], p[6]
		return nil
	})
}

// testJob is one Run in the background, bounded by the test's deadline.
type testJob struct {
	cfg            Config
	stdout, stderr *syncbuf.Buffer
	cancel         context.CancelCauseFunc
	done           chan struct{}
	err            error
	elapsed        time.Duration
}

// startJob runs cfg in the background with output captured and a deadline
// of limit. The test's cleanup cancels it and waits for Run to return.
func startJob(t *testing.T, cfg Config, limit time.Duration) *testJob {
	t.Helper()
	j := &testJob{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	if cfg.Stdout == nil {
		cfg.Stdout = j.stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = j.stderr
	}
	j.cfg = cfg
	ctx, cancel := context.WithCancelCause(context.Background())
	ctx, cancelTimeout := context.WithTimeout(ctx, limit)
	j.cancel = cancel
	go func() {
		defer close(j.done)
		defer cancelTimeout()
		start := time.Now()
		j.err = Run(ctx, cfg)
		j.elapsed = time.Since(start)
	}()
	t.Cleanup(func() { cancel(errors.New("test over")); <-j.done })
	return j
}

// wait waits for Run to return and returns its error.
func (j *testJob) wait(t *testing.T) error {
	t.Helper()
	<-j.done
	return j.err
}

// runJob runs cfg to completion with a deadline of limit.
func runJob(t *testing.T, cfg Config, limit time.Duration) (*testJob, error) {
	t.Helper()
	j := startJob(t, cfg, limit)
	return j, j.wait(t)
}

var pidLine = regexp.MustCompile(`(?m)^(?:\[\d+\] )?pid (\d+) (\d+)$`)

// waitPids waits until n ranks have printed "pid RANK PID" and returns the
// pids by rank.
func (j *testJob) waitPids(t *testing.T, n int) map[int]int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := parsePids(j.stdout.String())
		if len(pids) >= n {
			return pids
		}
		select {
		case <-j.done:
			t.Fatalf("job ended (%v) before %d ranks reported their pids; stdout:\n%s", j.err, n, j.stdout)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d ranks reported pids; stdout:\n%s", len(pids), n, j.stdout)
		}
	}
}

func parsePids(out string) map[int]int {
	pids := make(map[int]int)
	for _, m := range pidLine.FindAllStringSubmatch(out, -1) {
		r, _ := strconv.Atoi(m[1])
		p, _ := strconv.Atoi(m[2])
		pids[r] = p
	}
	return pids
}

// assertGone fails the test if any of pids still exists (Run reaps its
// ranks, so not even a zombie may remain).
func assertGone(t *testing.T, pids map[int]int) {
	t.Helper()
	for r, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("rank %d (pid %d) still exists after Run returned (kill 0: %v)", r, pid, err)
		}
	}
}

// jobError asserts that err is a *JobError.
func jobError(t *testing.T, err error) *JobError {
	t.Helper()
	var je *JobError
	if !errors.As(err, &je) {
		t.Fatalf("Run = %v (%T), want a *JobError", err, err)
	}
	return je
}

// cpusAllowed returns the Cpus_allowed_list line of a /proc status file.
func cpusAllowed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s: no Cpus_allowed_list", path)
}

// processMask is the CPU mask of the process's threads, read on the
// calling goroutine's thread: an ordinary one, unlike the main thread, which
// the runtime parks for good (keeping its mask) if a goroutine exits while
// locked to it.
func processMask(t *testing.T) topology.CPUSet {
	t.Helper()
	var u unix.CPUSet
	if err := unix.SchedGetaffinity(0, &u); err != nil {
		t.Fatal(err)
	}
	return topology.CPUSetFromUnix(&u)
}
