package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/syncbuf"
	"github.com/gorun-hpc/gorun/topology"
	"golang.org/x/sys/unix"
)

// The test programs under testdata/, built once by TestMain.
var bin struct {
	sleeper, lines, cat, pmiexchange, placement, shmleak, dier string
}

// TestMain builds the test rank programs into a private directory, which
// also serves as TMPDIR for the tests (ResolveProgram's builds), and
// removes it afterwards.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gorun-launcher-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("TMPDIR", tmp)
	progs := []string{"sleeper", "lines", "cat", "pmiexchange", "placement", "shmleak", "dier"}
	args := []string{"build", "-o", dir + "/"}
	for _, p := range progs {
		args = append(args, "./testdata/"+p)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building test programs: %v\n%s", err, out)
		return 1
	}
	bin.sleeper = filepath.Join(dir, "sleeper")
	bin.lines = filepath.Join(dir, "lines")
	bin.cat = filepath.Join(dir, "cat")
	bin.pmiexchange = filepath.Join(dir, "pmiexchange")
	bin.placement = filepath.Join(dir, "placement")
	bin.shmleak = filepath.Join(dir, "shmleak")
	bin.dier = filepath.Join(dir, "dier")
	return m.Run()
}

// job is one Run in the background, bounded by the test's deadline.
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

// checkLeaks fails the test if, when it ends, the test process has child
// processes, more open descriptors or more goroutines than when it began,
// or a thread whose CPU mask is not the process's (a rank's, left on the
// launcher's spawner thread).
func checkLeaks(t *testing.T) {
	t.Helper()
	fds, goroutines := countFDs(t), runtime.NumGoroutine()
	mask := processMask(t)
	t.Cleanup(func() {
		if kids := children(t); len(kids) > 0 {
			t.Errorf("child processes left: %v", kids)
		}
		checkThreadMasks(t, mask)
		// Goroutines of a finished Run may take a moment to be gone.
		deadline := time.Now().Add(2 * time.Second)
		for {
			nf, ng := countFDs(t), runtime.NumGoroutine()
			if nf <= fds && ng <= goroutines {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("leak: %d fds (was %d), %d goroutines (was %d)\n%s",
					nf, fds, ng, goroutines, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// children lists the pids whose parent is this process.
func children(t *testing.T) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	var kids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may contain spaces and parens.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		f := strings.Fields(string(rest))
		if len(f) > 1 && f[1] == strconv.Itoa(self) {
			kids = append(kids, pid)
		}
	}
	return kids
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

// checkThreadMasks fails the test if a thread of this process has a CPU
// mask other than want. Threads that end meanwhile are skipped.
func checkThreadMasks(t *testing.T, want topology.CPUSet) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		list, err := cpusAllowed("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue
		}
		if got, err := topology.ParseCPUSet(list); err != nil || !got.Equal(want) {
			t.Errorf("thread %s has CPU mask %s, the process had %s", task.Name(), list, want)
		}
	}
}
