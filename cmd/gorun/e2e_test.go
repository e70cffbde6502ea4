package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"golang.org/x/sys/unix"
)

// Binaries built together by TestMain: gorun itself and three rank programs of the launcher's
// tests.
var bin struct{ gorun, sleeper, pmiexchange, placement string }

// TestMain makes the test process a child subreaper, so that ranks orphaned when gorun is
// killed become its children (which harness.CheckLeaks then sees too), builds the binaries
// and runs the tests in harness's private directory.
func TestMain(m *testing.M) {
	harness.Main(m, func() error {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
		}
		p, err := harness.Build(".", "../../launcher/testdata/sleeper", "../../launcher/testdata/pmiexchange",
			"../../launcher/testdata/placement")
		if err != nil {
			return err
		}
		bin.gorun, bin.sleeper, bin.pmiexchange, bin.placement = p[0], p[1], p[2], p[3]
		return nil
	})
}

// gorunCmd is the gorun binary running args, its stdout readable as lines.
type gorunCmd struct {
	cmd    *exec.Cmd
	lines  *bufio.Scanner
	stderr bytes.Buffer
}

// startGorun starts gorun with args. When the test ends, gorun is killed and reaped, and
// then nothing may be left behind (harness.CheckLeaks).
func startGorun(t *testing.T, args ...string) *gorunCmd {
	t.Helper()
	harness.CheckLeaks(t)
	g := &gorunCmd{cmd: exec.Command(bin.gorun, args...)}
	g.cmd.Stderr = &g.stderr
	out, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.lines = bufio.NewScanner(out)
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, gorun does not outlive the test.
	timer := time.AfterFunc(20*time.Second, func() { g.cmd.Process.Kill() })
	t.Cleanup(func() {
		timer.Stop()
		g.cmd.Process.Kill()
		g.cmd.Wait()
	})
	return g
}

// readPids reads stdout until n ranks have printed "pid RANK PID".
func (g *gorunCmd) readPids(t *testing.T, n int) []int {
	t.Helper()
	var pids []int
	for len(pids) < n && g.lines.Scan() {
		var r, pid int
		if _, err := fmt.Sscanf(g.lines.Text(), "pid %d %d", &r, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	if len(pids) < n {
		t.Fatalf("got %d pids; stderr:\n%s", len(pids), &g.stderr)
	}
	return pids
}

// wait returns the rest of stdout and gorun's exit status.
func (g *gorunCmd) wait(t *testing.T) (string, int) {
	t.Helper()
	var rest strings.Builder
	for g.lines.Scan() {
		rest.WriteString(g.lines.Text() + "\n")
	}
	err := g.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return rest.String(), g.cmd.ProcessState.ExitCode()
}

// dead reports whether pid is gone or a zombie awaiting its new parent.
func dead(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	return bytes.HasPrefix(bytes.TrimSpace(rest), []byte("Z"))
}

func waitDead(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for !dead(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("rank pid %d outlived gorun", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestGorunRankFails(t *testing.T) {
	g := startGorun(t, "-n", "3", bin.sleeper, "-meet", "-fail-rank", "1", "-code", "3", "-after", "100ms")
	pids := g.readPids(t, 3)
	_, code := g.wait(t)
	if code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
	want := regexp.MustCompile(`^gorun: rank 1 \(pid \d+\) exited with status 3; job aborted\n$`)
	if !want.MatchString(g.stderr.String()) {
		t.Errorf("stderr %q, want one line naming rank 1 and status 3", g.stderr.String())
	}
	waitDead(t, pids)
}

func TestGorunSuccess(t *testing.T) {
	g := startGorun(t, "-n", "2", "--tag-output", "-x", "GORUN_TEST_EXTRA=hi", "-x", "PATH", bin.pmiexchange)
	out, code := g.wait(t)
	if code != 0 || g.stderr.Len() != 0 {
		t.Fatalf("exit status %d, stderr %q", code, g.stderr.String())
	}
	for r := range 2 {
		for _, want := range []string{
			fmt.Sprintf("[%d] rank %d ok: 2 cards", r, r),
			fmt.Sprintf("[%d] env rank=%d size=2 fd=3 ", r, r),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
	}
	if strings.Count(out, "extra=hi ") != 2 {
		t.Errorf("-x GORUN_TEST_EXTRA=hi did not reach both ranks:\n%s", out)
	}
}

// SIGTERM to gorun reaches every rank; gorun exits 128+15.
func TestGorunForwardsSIGTERM(t *testing.T) {
	g := startGorun(t, "-n", "2", bin.sleeper, "-report-term")
	pids := g.readPids(t, 2)
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	out, code := g.wait(t)
	if code != 128+15 {
		t.Errorf("exit status %d, want 143", code)
	}
	for r := range 2 {
		if !strings.Contains(out, fmt.Sprintf("rank %d got SIGTERM", r)) {
			t.Errorf("rank %d did not get SIGTERM; stdout:\n%s", r, out)
		}
	}
	if want := "gorun: job canceled (gorun got signal terminated); job aborted\n"; g.stderr.String() != want {
		t.Errorf("stderr %q, want %q", g.stderr.String(), want)
	}
	waitDead(t, pids)
}

// Ranks die with gorun even when gorun gets SIGKILL (PR_SET_PDEATHSIG).
// The test process is a child subreaper (see TestMain), so the orphaned
// ranks become its children: it checks how they died and reaps them. (A
// rank that died before gorun's last thread did may have been reaped by
// gorun itself.)
func TestGorunKilledTakesRanksAlong(t *testing.T) {
	g := startGorun(t, "-n", "3", bin.sleeper)
	pids := g.readPids(t, 3)
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, code := g.wait(t); code != -1 {
		t.Fatalf("gorun exit status %d, want killed", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.ECHILD) && dead(pid) {
				break // gorun itself reaped it while it was dying
			}
			if err != nil {
				t.Fatalf("rank pid %d: wait4: %v", pid, err)
			}
			if wpid == pid {
				if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Errorf("rank pid %d ended with %v, want SIGKILL from PR_SET_PDEATHSIG", pid, ws)
				}
				break
			}
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("rank pid %d outlived gorun", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
