package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/internal/syncbuf"
)

func TestRankExitStatus(t *testing.T) {
	harness.CheckLeaks(t)
	j := startJob(t, Config{N: 4, Program: bin.sleeper, Args: []string{"-meet", "-fail-rank", "2", "-code", "3"}}, 10*time.Second)
	pids := j.waitPids(t, 4)
	je := jobError(t, j.wait(t))
	if j.elapsed > 2*time.Second {
		t.Errorf("Run took %v after a rank failed, want < 2s", j.elapsed)
	}
	if je.Cause != CauseExit || len(je.Ranks) != 1 {
		t.Fatalf("JobError %+v, want one rank with CauseExit", je)
	}
	if r := je.Ranks[0]; r.Rank != 2 || r.Status != 3 || r.Pid != pids[2] {
		t.Errorf("failed rank %+v, want rank 2 (pid %d) status 3", r, pids[2])
	}
	want := fmt.Sprintf("gorun: rank 2 (pid %d) exited with status 3; job aborted", pids[2])
	if je.Error() != want {
		t.Errorf("Error() = %q, want %q", je.Error(), want)
	}
	if je.ExitCode() != 3 || je.Terminated != 3 {
		t.Errorf("ExitCode %d, Terminated %d; want 3, 3", je.ExitCode(), je.Terminated)
	}
	assertGone(t, pids)
}

func TestRankKilledBySignal(t *testing.T) {
	harness.CheckLeaks(t)
	j := startJob(t, Config{N: 3, Program: bin.sleeper}, 10*time.Second)
	pids := j.waitPids(t, 3)
	if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	je := jobError(t, j.wait(t))
	if je.Cause != CauseSignal || len(je.Ranks) != 1 || je.Ranks[0].Rank != 1 || je.Ranks[0].Signal != syscall.SIGKILL {
		t.Fatalf("JobError %+v (ranks %v), want rank 1 killed by SIGKILL", je, je.Ranks)
	}
	want := fmt.Sprintf("gorun: rank 1 (pid %d) killed by signal 9 (killed); job aborted", pids[1])
	if je.Error() != want || je.ExitCode() != 128+9 {
		t.Errorf("Error() = %q, ExitCode %d; want %q, 137", je.Error(), je.ExitCode(), want)
	}
	assertGone(t, pids)
}

// Every rank exits 0 → nil; the PMI exchange works at every size,
// oversubscribed (8 ranks on 2 cores) included.
func TestPMIExchange(t *testing.T) {
	for _, n := range []int{1, 2, 4, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			harness.CheckLeaks(t)
			j, err := runJob(t, Config{N: n, Program: bin.pmiexchange, TagOutput: true}, 20*time.Second)
			if err != nil {
				t.Fatalf("Run: %v\nstderr:\n%s", err, j.stderr)
			}
			for r := 0; r < n; r++ {
				want := fmt.Sprintf("[%d] rank %d ok: %d cards, mapping (vector,(0,1,%d))\n", r, r, n, n)
				if !strings.Contains(j.stdout.String(), want) {
					t.Errorf("missing %q in stdout:\n%s", want, j.stdout)
				}
			}
		})
	}
}

// A rank that exits 0 while the others still run is fine: they finish too.
func TestEarlyCleanExit(t *testing.T) {
	harness.CheckLeaks(t)
	j, err := runJob(t, Config{N: 3, Program: bin.sleeper,
		Args: []string{"-fail-rank", "0", "-code", "0", "-after", "0s", "-live", "300ms", "-report-term"}}, 10*time.Second)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Contains(j.stdout.String(), "SIGTERM") || j.elapsed < 300*time.Millisecond {
		t.Errorf("ranks were ended early (after %v):\n%s", j.elapsed, j.stdout)
	}
	assertGone(t, parsePids(j.stdout.String()))
}

var envLine = regexp.MustCompile(`(?m)^env rank=(\d+) size=(\d+) fd=(\d+) jobid=(\S+) key=(\S*) extra=(\S*) inherited=(\S*) pmi_port=(\S*)$`)

func TestRankEnvironment(t *testing.T) {
	harness.CheckLeaks(t)
	t.Setenv("PMI_PORT", "outer-launcher:1") // must not reach the ranks
	t.Setenv("GORUN_TEST_INHERITED", "yes")
	var jobIDs, keys []string
	for range 2 {
		j, err := runJob(t, Config{N: 3, Program: bin.pmiexchange,
			Env: []string{"GORUN_TEST_EXTRA=x=1", "PMI_RANK=99", "GORUN_JOB_KEY=forged"}}, 10*time.Second)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, j.stderr)
		}
		got := envLine.FindAllStringSubmatch(j.stdout.String(), -1)
		if len(got) != 3 {
			t.Fatalf("want 3 env lines, got:\n%s", j.stdout)
		}
		ranks := map[string]bool{}
		for _, m := range got {
			ranks[m[1]] = true
			if m[2] != "3" || m[3] != "3" || m[6] != "x=1" || m[7] != "yes" || m[8] != "" {
				t.Errorf("rank %s: size %s fd %s extra %q inherited %q PMI_PORT %q; want 3, 3, x=1, yes, unset",
					m[1], m[2], m[3], m[6], m[7], m[8])
			}
			if m[4] != got[0][4] || m[5] != got[0][5] {
				t.Errorf("ranks disagree on job id or key: %v vs %v", m[4:6], got[0][4:6])
			}
		}
		if len(ranks) != 3 {
			t.Errorf("ranks %v, want 0, 1, 2", ranks)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got[0][5]) {
			t.Errorf("GORUN_JOB_KEY %q is not 64 hex digits", got[0][5])
		}
		jobIDs, keys = append(jobIDs, got[0][4]), append(keys, got[0][5])
	}
	if jobIDs[0] == jobIDs[1] || keys[0] == keys[1] {
		t.Errorf("two jobs share job id (%v) or key", jobIDs)
	}
}

// lineRE matches what testdata/lines prints, with an optional tag.
var lineRE = regexp.MustCompile(`^(?:\[(\d+)\] )?rank (\d+) /dev/(stdout|stderr) (?:line (\d+) of \d+|tail)$`)

func TestOutputForwarding(t *testing.T) {
	const n, lines = 3, 300
	for _, tc := range []struct {
		name       string
		tag, merge bool
	}{
		{"plain", false, false},
		{"tagged", true, false},
		{"tagged, one writer for both", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			harness.CheckLeaks(t)
			cfg := Config{N: n, Program: bin.lines, Args: []string{"-n", fmt.Sprint(lines)}, TagOutput: tc.tag}
			both := &syncbuf.Buffer{}
			if tc.merge {
				cfg.Stdout, cfg.Stderr = both, both
			}
			j, err := runJob(t, cfg, 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if tc.merge {
				checkLines(t, both.String(), n, lines, tc.tag, "stdout", "stderr")
			} else {
				checkLines(t, j.stdout.String(), n, lines, tc.tag, "stdout")
				checkLines(t, j.stderr.String(), n, lines, tc.tag, "stderr")
			}
		})
	}
}

// checkLines checks that out holds, for every rank and stream, exactly the
// lines the rank printed, whole, in order, ending with its tail line.
func checkLines(t *testing.T, out string, ranks, lines int, tagged bool, streams ...string) {
	t.Helper()
	next := map[string]int{} // "rank/stream" -> next line number; -1 after the tail
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil || (m[1] != "") != tagged || (tagged && m[1] != m[2]) {
			t.Fatalf("bad line %q (tagged=%v)", l, tagged)
		}
		k := m[2] + "/" + m[3]
		switch {
		case next[k] == -1:
			t.Fatalf("line %q after the tail of %s", l, k)
		case m[4] == "":
			if next[k] != lines {
				t.Fatalf("tail of %s after %d lines, want %d", k, next[k], lines)
			}
			next[k] = -1
		case m[4] != fmt.Sprint(next[k]):
			t.Fatalf("%s: got line %s, want %d", k, m[4], next[k])
		default:
			next[k]++
		}
	}
	for r := 0; r < ranks; r++ {
		for _, s := range streams {
			if k := fmt.Sprintf("%d/%s", r, s); next[k] != -1 {
				t.Errorf("%s incomplete: %d lines, no tail", k, next[k])
			}
		}
	}
}

func TestStdinToRankZero(t *testing.T) {
	var input strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&input, "input line %d\n", i)
	}
	input.WriteString("no newline at the end")
	file := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(file, []byte(input.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stdin func(t *testing.T) io.Reader
	}{
		{"reader", func(t *testing.T) io.Reader { return strings.NewReader(input.String()) }},
		{"file", func(t *testing.T) io.Reader {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			harness.CheckLeaks(t)
			cfg := Config{N: 2, Program: bin.cat, Stdin: tc.stdin(t)}
			j, err := runJob(t, cfg, 10*time.Second)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, j.stderr)
			}
			if got := j.stdout.String(); got != input.String()+"\n" {
				t.Errorf("rank 0 echoed %d bytes, want the %d input bytes (plus the final newline)", len(got), input.Len())
			}
			if want := "rank 1 stdin: 0 bytes, <nil>\n"; j.stderr.String() != want {
				t.Errorf("stderr %q, want %q", j.stderr, want)
			}
		})
	}
}

func TestPMIAbort(t *testing.T) {
	harness.CheckLeaks(t)
	j, err := runJob(t, Config{N: 3, Program: bin.pmiexchange, Args: []string{"-abort-rank", "1", "-code", "7"}}, 10*time.Second)
	je := jobError(t, err)
	if je.Cause != CauseAbort || len(je.Ranks) != 1 {
		t.Fatalf("JobError %+v, want CauseAbort", je)
	}
	if r := je.Ranks[0]; r.Rank != 1 || r.Status != 7 || r.Message != "rank_gives_up" {
		t.Errorf("rank error %+v, want rank 1, code 7, message rank_gives_up", r)
	}
	if je.ExitCode() != 7 || !strings.Contains(je.Error(), "rank 1 (pid ") ||
		!strings.HasSuffix(je.Error(), "called PMI abort with exit code 7: rank_gives_up; job aborted") {
		t.Errorf("Error() = %q, ExitCode %d", je.Error(), je.ExitCode())
	}
	if j.elapsed > 2*time.Second {
		t.Errorf("Run took %v", j.elapsed)
	}
}

func TestTimeout(t *testing.T) {
	harness.CheckLeaks(t)
	j := startJob(t, Config{N: 2, Program: bin.sleeper, Timeout: 300 * time.Millisecond}, 10*time.Second)
	pids := j.waitPids(t, 2)
	je := jobError(t, j.wait(t))
	if je.Cause != CauseTimeout || je.ExitCode() != 124 || len(je.Ranks) != 0 {
		t.Fatalf("JobError %+v, ExitCode %d; want CauseTimeout, 124", je, je.ExitCode())
	}
	if want := "gorun: job exceeded its timeout of 300ms; job aborted"; je.Error() != want {
		t.Errorf("Error() = %q, want %q", je.Error(), want)
	}
	assertGone(t, pids)
}

// Cancelling Run's context sends every rank SIGTERM.
func TestCancelForwardsSIGTERM(t *testing.T) {
	harness.CheckLeaks(t)
	j := startJob(t, Config{N: 3, Program: bin.sleeper, Args: []string{"-report-term"}}, 10*time.Second)
	pids := j.waitPids(t, 3)
	cause := errors.New("interrupt signal received")
	j.cancel(cause)
	je := jobError(t, j.wait(t))
	if je.Cause != CauseCanceled || !errors.Is(je, cause) || je.Terminated != 3 {
		t.Fatalf("JobError %+v, want CauseCanceled with the cause, 3 terminated", je)
	}
	if want := "gorun: job canceled (interrupt signal received); job aborted"; je.Error() != want {
		t.Errorf("Error() = %q, want %q", je.Error(), want)
	}
	for r := range 3 {
		if !strings.Contains(j.stdout.String(), fmt.Sprintf("rank %d got SIGTERM\n", r)) {
			t.Errorf("rank %d did not report SIGTERM; stdout:\n%s", r, j.stdout)
		}
	}
	assertGone(t, pids)
}

// Ranks that ignore SIGTERM are killed once the grace period is over.
func TestGraceThenSIGKILL(t *testing.T) {
	harness.CheckLeaks(t)
	const grace = 300 * time.Millisecond
	j := startJob(t, Config{N: 2, Program: bin.sleeper, Args: []string{"-meet", "-ignore-term", "-fail-rank", "0", "-code", "1"},
		Grace: grace}, 10*time.Second)
	pids := j.waitPids(t, 2)
	je := jobError(t, j.wait(t))
	if je.Cause != CauseExit || je.Ranks[0].Rank != 0 {
		t.Fatalf("JobError %+v", je)
	}
	if j.elapsed < grace {
		t.Errorf("Run returned after %v, before the %v grace period was over", j.elapsed, grace)
	}
	assertGone(t, pids)
}

func TestSetupErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "data")
	badExec := filepath.Join(dir, "garbage")
	os.WriteFile(notExec, []byte("data"), 0o600)
	os.WriteFile(badExec, []byte("\x00\x01 not a program"), 0o700)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no ranks", Config{N: 0, Program: bin.sleeper}, "need at least one rank"},
		{"no program", Config{N: 1}, "no program"},
		{"bad env", Config{N: 1, Program: bin.sleeper, Env: []string{"NOVALUE"}}, `"NOVALUE" is not KEY=VALUE`},
		{"missing", Config{N: 1, Program: filepath.Join(dir, "missing")}, "no such file"},
		{"not executable", Config{N: 1, Program: notExec}, "not an executable file"},
		{"exec fails", Config{N: 2, Program: badExec}, "exec format error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			harness.CheckLeaks(t)
			_, err := runJob(t, tc.cfg, 10*time.Second)
			je := jobError(t, err)
			if je.Cause != CauseSetup || !strings.Contains(je.Error(), tc.want) || je.ExitCode() != 1 {
				t.Errorf("Run = %v (cause %v, exit %d), want a setup error containing %q", je, je.Cause, je.ExitCode(), tc.want)
			}
		})
	}
}

// Run builds a package directory once, then runs it.
func TestRunBuildsPackage(t *testing.T) {
	harness.CheckLeaks(t)
	j, err := runJob(t, Config{N: 2, Program: "./testdata/lines", Args: []string{"-n", "1"}}, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, j.stdout.String(), 2, 1, false, "stdout")
	if ents, _ := os.ReadDir(os.TempDir()); len(ents) != 0 {
		t.Errorf("build directory left behind: %v", ents)
	}
}

func TestCanceledBeforeStart(t *testing.T) {
	harness.CheckLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	je := jobError(t, Run(ctx, Config{N: 2, Program: bin.sleeper}))
	if je.Cause != CauseCanceled || !errors.Is(je, context.Canceled) {
		t.Fatalf("JobError %+v, want CauseCanceled", je)
	}
}

// The kernel sends PR_SET_PDEATHSIG when the thread that forked a rank
// exits, and Go ends a thread whenever a goroutine exits while locked to
// it. Goroutines doing exactly that while a job runs must not kill its
// ranks (Run forks them from a thread it keeps locked; see job.spawn).
func TestRanksSurviveThreadExits(t *testing.T) {
	harness.CheckLeaks(t)
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() { runtime.LockOSThread() }) // exits locked: its thread ends
			}
			wg.Wait()
		}
	})
	j, err := runJob(t, Config{N: 4, Program: bin.sleeper,
		Args: []string{"-fail-rank", "0", "-code", "0", "-after", "0s", "-live", "500ms"}}, 10*time.Second)
	close(stop)
	churn.Wait()
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, j.stderr)
	}
}

// When a rank cannot be started (here: the process runs out of file
// descriptors part-way), the ranks already running are ended and reaped.
func TestStartFailsPartWay(t *testing.T) {
	harness.CheckLeaks(t)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Each running rank holds a few descriptors; 30 spare ones run out
	// after some ranks of 64 have started.
	tight := lim
	tight.Cur = uint64(countFDs(t) + 30)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &tight); err != nil {
		t.Skip("cannot lower RLIMIT_NOFILE:", err)
	}
	j := startJob(t, Config{N: 64, Program: bin.sleeper}, 10*time.Second)
	err := j.wait(t)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	je := jobError(t, err)
	if je.Cause != CauseSetup || !errors.Is(je, syscall.EMFILE) || je.Terminated == 0 {
		t.Fatalf("JobError %v (cause %v, %d terminated), want a setup error (EMFILE) after some ranks started",
			je, je.Cause, je.Terminated)
	}
	t.Logf("%v (%d ranks terminated)", je, je.Terminated)
	assertGone(t, parsePids(j.stdout.String()))
}

// countFDs is the number of descriptors the test process has open.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
