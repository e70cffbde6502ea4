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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/internal/shmname"
	"github.com/gorun-hpc/gorun/internal/syncbuf"
)

// Deaths at every phase: a rank SIGKILLs itself (testdata/dier) at one phase of a job, and the
// job must end promptly, non-zero, with an error naming that rank, leaving no process and no
// /dev/shm file. What "promptly" means is 2 s from the kill to Run's return; the tests assert
// deathBound, generous for a loaded 2-core machine, and log the time measured ("death: …").

// deathBound is the most a test lets pass between the kill and the job's end.
const deathBound = 5 * time.Second

// deathLimit bounds each job, so that a job that hangs fails its test (the rank program
// waits up to 20 s for a phase on a loaded machine).
const deathLimit = 45 * time.Second

type deathCase struct {
	name     string
	n        int
	scenario string
	victim   int
	env      []string
}

var fallback = []string{"GORUN_SHM_FALLBACK=1"}

var (
	beforeInitCases = []deathCase{{name: "before-init", n: 4, scenario: "preinit", victim: 2}}
	handoffCases    = []deathCase{
		// Rank 0 waits in its serve loop for rank 2, rank 1 waits for the segment.
		{name: "member", n: 3, scenario: "member", victim: 2},
		{name: "member-fallback", n: 3, scenario: "member", victim: 2, env: fallback},
		// Rank 1 waits for the segment from rank 0, which dies; rank 2 comes late.
		{name: "leader", n: 3, scenario: "leader", victim: 0},
		{name: "leader-fallback", n: 3, scenario: "leader", victim: 0, env: fallback},
		// Rank 0 dies before it listens; ranks 1 and 2 are dialling it.
		{name: "leader-before-listen", n: 3, scenario: "leaderearly", victim: 0},
	}
	transferCases = []deathCase{
		{name: "transfer-bulk-sender", n: 2, scenario: "transfer", victim: 0, env: []string{"GORUN_CMA=off"}},
		{name: "transfer-bulk-receiver", n: 2, scenario: "transfer", victim: 1, env: []string{"GORUN_CMA=off"}},
		{name: "transfer-cma-sender", n: 2, scenario: "transfer", victim: 0, env: []string{"GORUN_CMA=on"}},
		{name: "transfer-cma-receiver", n: 2, scenario: "transfer", victim: 1, env: []string{"GORUN_CMA=on"}},
	}
	collectiveCases = []deathCase{
		{name: "allreduce", n: 4, scenario: "allreduce", victim: 2, env: []string{"GORUN_ALLREDUCE_ALGO=shm"}},
		{name: "bcast", n: 4, scenario: "bcast", victim: 3, env: []string{"GORUN_BCAST_ALGO=shm"}},
	}
	closeCases = []deathCase{{name: "close", n: 3, scenario: "close", victim: 1}}
)

func TestDeathBeforeInit(t *testing.T)        { runDeaths(t, beforeInitCases) }
func TestDeathSegmentHandoff(t *testing.T)    { runDeaths(t, handoffCases) }
func TestDeathMidTransfer(t *testing.T)       { runDeaths(t, transferCases) }
func TestDeathInArenaCollective(t *testing.T) { runDeaths(t, collectiveCases) }
func TestDeathDuringClose(t *testing.T)       { runDeaths(t, closeCases) }

// deathTestsEnv runs the tests that kill ranks and gorun at every phase. They create and
// leave (until their checks remove them) /dev/shm segment files and build directories while
// they run, which the leak checks of every other job test would count as theirs, so they run
// on their own: .ci/run runs them after the suite, one package at a time.
const deathTestsEnv = "GORUN_DEATH_TESTS"

// alone skips a test that must not share the machine with other job tests, unless
// GORUN_DEATH_TESTS=1 says it runs alone.
func alone(t *testing.T) {
	t.Helper()
	if os.Getenv(deathTestsEnv) != "1" {
		t.Skipf("runs alone: %s=1 go test -race -run 'TestDeath|TestKilledGorun' ./launcher/ (.ci/run does, after the suite)", deathTestsEnv)
	}
}

func runDeaths(t *testing.T, cases []deathCase) {
	alone(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runDeath(t, c, false) })
	}
}

// survivorTimeout is the start-up timeout (GORUN_CONNECT_TIMEOUT) of TestDeathSurvivorsNotice,
// twice deathBound: a survivor that waits for it has not noticed the death, and fails the
// bound.
const survivorTimeout = 2 * deathBound

// TestDeathSurvivorsNotice: the same deaths, but the ranks ignore SIGTERM and the grace
// period is long, so that the job ends only when the survivors notice the death themselves
// (a peer's EOF, pidfd or a failed PMI barrier) and fail, as ARCHITECTURE.md promises.
func TestDeathSurvivorsNotice(t *testing.T) {
	alone(t)
	for _, cases := range [][]deathCase{beforeInitCases, handoffCases, transferCases, collectiveCases, closeCases} {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { runDeath(t, c, true) })
		}
	}
}

// TestDeathReportedFirst: the supervisor names the rank killed by a signal, not the ranks that
// exited non-zero because of it, even when those are reaped first (a failed PMI barrier makes
// them exit within a millisecond of the death) and the dead rank only after the job began
// ending.
func TestDeathReportedFirst(t *testing.T) {
	for _, tc := range []struct {
		name     string
		late     bool // the dead rank is reaped after SIGTERM went out
		killSent bool // ... and after gorun's SIGKILL
		want     []int
	}{
		{name: "reaped-before-ending", want: []int{2, 0}},
		{name: "reaped-while-ending", late: true, want: []int{2, 0}},
		{name: "reaped-after-gorun-sigkill", late: true, killSent: true, want: []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &supervisor{}
			s.failRank(&RankError{Rank: 0, Pid: 10, Cause: CauseExit, Status: 1})
			if tc.late {
				s.ending, s.fail.Terminated, s.killed = true, 3, tc.killSent
				s.failRank(&RankError{Rank: 1, Pid: 11, Cause: CauseExit, Status: 1})
				s.failRank(&RankError{Rank: 3, Pid: 13, Cause: CauseSignal, Signal: syscall.SIGTERM})
			}
			s.failRank(&RankError{Rank: 2, Pid: 12, Cause: CauseSignal, Signal: syscall.SIGKILL})
			var got []int
			for _, r := range s.fail.Ranks {
				got = append(got, r.Rank)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("failed ranks %v, want %v", got, tc.want)
			}
			if wantCause := s.fail.Ranks[0].Cause; s.fail.Cause != wantCause {
				t.Errorf("job cause %v, first rank's %v", s.fail.Cause, wantCause)
			}
			if tc.late && !tc.killSent && s.fail.Terminated != 2 {
				t.Errorf("Terminated = %d, want 2 (the dead rank got SIGTERM but was not ended by it)", s.fail.Terminated)
			}
		})
	}
}

var killLine = regexp.MustCompile(`(?m)^kill (\d+) (\d+)$`)

// runDeath runs c's job and checks how it ended. With alone, the ranks ignore SIGTERM, so
// that only the survivors' own failures end the job.
func runDeath(t *testing.T, c deathCase, alone bool) {
	harness.CheckLeaks(t) // also: no /dev/shm entry of the job's is left
	cfg := Config{N: c.n, Program: bin.dier, Args: []string{c.scenario, strconv.Itoa(c.victim)},
		Env: append([]string{"DIER_DIR=" + t.TempDir()}, c.env...)}
	what := "death"
	if alone {
		cfg.Env = append(cfg.Env, "DIER_IGNORE_TERM=1", "GORUN_CONNECT_TIMEOUT="+survivorTimeout.String())
		cfg.Grace = 10 * time.Second // SIGKILL only when the test has failed anyway
		what = "survivors"
	}
	j := startJob(t, cfg, deathLimit)
	err := j.wait(t)
	ended := time.Now()
	stdout := j.stdout.String()
	defer func() {
		if t.Failed() {
			t.Logf("Run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, j.stderr)
		}
	}()
	pids := parsePids(stdout)
	assertGone(t, pids)
	m := killLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("rank %d did not kill itself (Run took %v)", c.victim, j.elapsed)
	}
	at, _ := strconv.ParseInt(m[2], 10, 64)
	took := ended.Sub(time.Unix(0, at))
	t.Logf("%s: %s: job ended %.1f ms after the kill (Run took %v)", what, c.name, ms(took), j.elapsed.Round(time.Millisecond))
	checkKilledRank(t, err, c.victim, pids[c.victim])
	if alone && !t.Failed() {
		t.Logf("the survivors said:\n%s", failLines(j.stderr.String()))
	}
	if took > deathBound {
		t.Errorf("the job ended %v after rank %d was killed, want well under %v", took, c.victim, deathBound)
	}
}

// checkKilledRank asserts that err is a job error whose first failure is rank victim (pid),
// killed by SIGKILL, and that the one-line message names it.
func checkKilledRank(t *testing.T, err error, victim, pid int) {
	t.Helper()
	je := jobError(t, err)
	if je.Cause != CauseSignal || len(je.Ranks) == 0 {
		t.Fatalf("job error %q: cause %v with %d failed rank(s), want a signal", je, je.Cause, len(je.Ranks))
	}
	first := je.Ranks[0]
	if first.Rank != victim || first.Pid != pid || first.Cause != CauseSignal || first.Signal != syscall.SIGKILL {
		t.Errorf("first failure %q (rank %d, pid %d, %v, %v), want rank %d (pid %d) killed by SIGKILL",
			first, first.Rank, first.Pid, first.Cause, first.Signal, victim, pid)
	}
	want := fmt.Sprintf("gorun: rank %d (pid %d) killed by signal 9 (killed)", victim, pid)
	if !strings.HasPrefix(je.Error(), want) {
		t.Errorf("error %q, want it to begin %q", je.Error(), want)
	}
	if got := je.ExitCode(); got != 128+9 {
		t.Errorf("exit code %d, want %d", got, 128+9)
	}
}

// TestKilledGorunLeavesNothing: gorun itself is SIGKILLed while its ranks set up the node
// segment in a /dev/shm file (GORUN_SHM_FALLBACK=1): rank 3 never fetches it, so rank 0 has
// created the file and waits in its serve loop while ranks 1 and 2 have connected. The file
// must have no name even then (rank 0 holds it open, unnamed), every rank must die with gorun
// (PR_SET_PDEATHSIG) within deathBound, and nothing of the job may be left in /dev/shm.
func TestKilledGorunLeavesNothing(t *testing.T) {
	alone(t)
	harness.CheckLeaks(t) // also: nothing of the job's is left in /dev/shm
	gorun := harness.Program(t, "../cmd/gorun")
	ctx, cancel := context.WithTimeout(context.Background(), deathLimit)
	defer cancel()
	var out syncbuf.Buffer
	const n = 4
	cmd := exec.CommandContext(ctx, gorun, "-n", strconv.Itoa(n), bin.dier, "stall", "-1")
	cmd.Env = append(os.Environ(), "GORUN_SHM_FALLBACK=1", "DIER_DIR="+t.TempDir())
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // the ranks hold the output pipes until they die
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	// Wait for the set-up state: rank 0 holds the segment and serves it, ranks 1 and 2 have
	// connected to it.
	var pids map[int]int
	var files map[int]string
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids = parsePids(out.String())
		if files = jobSegmentFiles(out.String(), pids); len(pids) == n && len(files) == n {
			listening, accepted := segmentSocket(pids[0])
			if listening && accepted == n-2 && holdsShmFile(pids[0]) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ranks did not reach the segment handoff; output:\n%s", out.String())
		}
		time.Sleep(2 * time.Millisecond)
	}

	if file, ok := segmentFileOf(t, files[0]); ok {
		t.Errorf("rank 0's segment file has a name during the handoff: %s", file)
	}
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var gone time.Duration
	for r, pid := range pids {
		for !processGone(pid) {
			if time.Since(killed) > deathBound {
				t.Fatalf("rank %d (pid %d) still runs %v after gorun was killed", r, pid, deathBound)
			}
			time.Sleep(time.Millisecond)
		}
		gone = max(gone, time.Since(killed))
	}
	err := cmd.Wait()
	waited = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("gorun ended with %v, want killed by SIGKILL", err)
	}
	t.Logf("death: gorun-killed: every rank gone %.1f ms after gorun was killed", ms(gone))
}

// holdsShmFile reports whether pid holds open a file of /dev/shm (which, unnamed, its
// descriptor's link shows as "/dev/shm/#INODE (deleted)").
func holdsShmFile(pid int) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "/dev/shm/") {
			return true
		}
	}
	return false
}

var jobLine = regexp.MustCompile(`(?m)^job (\S+)$`)

// jobSegmentFiles names (in /dev/shm) the fallback segment file each of the job's ranks would
// create as its node's first: shmname.Fallback's name, which the file's name is or begins
// with followed by a dash (when it carries a nonce). It uses the "job JOBID" line rank 0
// prints.
func jobSegmentFiles(stdout string, pids map[int]int) map[int]string {
	m := jobLine.FindStringSubmatch(stdout)
	if m == nil {
		return nil
	}
	files := make(map[int]string)
	for r, pid := range pids {
		files[r] = strings.TrimPrefix(shmname.Fallback("gorun_"+m[1], pid), "/dev/shm/")
	}
	return files
}

// segmentFileOf returns the /dev/shm entry that is rank's file by jobSegmentFiles' name, if
// there is one.
func segmentFileOf(t *testing.T, stem string) (string, bool) {
	for e := range harness.ShmEntries(t) {
		if isSegmentFile(e, stem) {
			return "/dev/shm/" + e, true
		}
	}
	return "", false
}

func isSegmentFile(name, stem string) bool {
	return name == stem || strings.HasPrefix(name, stem+"-")
}

// processGone reports whether pid has exited: no such process, or a zombie with no thread
// left (a rank whose parent died is reaped by whoever adopted it, which may take its time; a
// thread group's leader is a zombie before its other threads are gone).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) == 0 || f[0] != "Z" && f[0] != "X" {
		return false
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	return err != nil || len(tasks) <= 1
}

// segmentSocket reads /proc/net/unix for the segment socket of the node's first rank
// (transport/shm's "@gorun-seg-…-PID"): whether it listens, and how many connections it has
// accepted (an accepted socket carries the listener's name).
func segmentSocket(leaderPid int) (listening bool, accepted int) {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return false, 0
	}
	suffix := "-" + strconv.Itoa(leaderPid)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line) // Num RefCount Protocol Flags Type St Inode Path
		if len(f) < 8 || !strings.HasPrefix(f[7], "@gorun-seg-") || !strings.HasSuffix(f[7], suffix) {
			continue
		}
		switch f[5] {
		case "01":
			listening = true
		case "03":
			accepted++
		}
	}
	return listening, accepted
}

// failLines returns the "FAIL: ..." lines of the ranks' stderr.
func failLines(stderr string) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "FAIL: ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
