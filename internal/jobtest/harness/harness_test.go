package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { Main(m, nil) }

func TestMainSetsTMPDIR(t *testing.T) {
	if os.TempDir() != builds.tmp || !strings.HasPrefix(builds.tmp, builds.root) {
		t.Errorf("TMPDIR %s, want Main's %s under %s", os.TempDir(), builds.tmp, builds.root)
	}
}

func TestBuild(t *testing.T) {
	bin := Program(t, "./testdata/pause")
	abs, err := filepath.Abs("testdata/pause")
	if err != nil {
		t.Fatal(err)
	}
	if again := Programs(t, abs, "./testdata/pause"); again[0] != bin || again[1] != bin {
		t.Errorf("built again: %v, first %s", again, bin)
	}
	if !strings.HasPrefix(bin, programDir()) || filepath.Base(bin) != "pause" {
		t.Errorf("binary %s, want .../pause under %s", bin, programDir())
	}
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if race := strings.Contains(string(out), "-race=true"); race != Race {
		t.Errorf("built with the race detector: %v, the test binary: %v\n%s", race, Race, out)
	}
	if _, err := Build("example.com/a/prog", "example.com/b/prog"); err == nil || !strings.Contains(err.Error(), "both build prog") {
		t.Errorf("two programs named prog in one build: %v", err)
	}
}

// recorder is a reporter that keeps what it is told.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestCheckFindsLeaks leaves one thing behind per case between Take and Check and expects
// Check to report it (and nothing when nothing is left).
func TestCheckFindsLeaks(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string                           // in one of Check's errors; "" for none at all
		leak func(t *testing.T) (undo func()) // leaves something behind
	}{
		{"nothing", "", func(t *testing.T) func() { return func() {} }},
		{"descriptor", "open descriptors", leakFD},
		{"goroutine", "goroutines", leakGoroutine},
		{"child", "child process", leakChild},
		{"zombie", "state Z", leakZombie},
		{"program", "left running", leakProgram},
		{"thread mask", "CPU mask", leakThreadMask},
		{"shm entry", "/dev/shm/gorun-", leakShm},
		{"tmpdir entry", "in TMPDIR", leakTmp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Take(t)
			undo := tc.leak(t)
			var r recorder
			s.check(&r)
			undo()
			found := false
			for _, e := range r.errs {
				found = found || tc.want != "" && strings.Contains(e, tc.want)
			}
			switch {
			case tc.want == "" && len(r.errs) > 0:
				t.Errorf("Check found leaks where there are none: %q", r.errs)
			case tc.want != "" && !found:
				t.Errorf("Check did not report the leak (%q); it said %q", tc.want, r.errs)
			}
		})
	}
}

func leakFD(t *testing.T) func() {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

func leakGoroutine(t *testing.T) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { <-stop; close(done) }()
	return func() { close(stop); <-done }
}

func leakChild(t *testing.T) func() {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep(1):", err)
	}
	return func() { cmd.Process.Kill(); cmd.Wait() }
}

// leakZombie leaves a child that has exited and is not reaped.
func leakZombie(t *testing.T) func() {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skip("no true(1):", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
		if err == nil && strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("true(1) did not exit: %s", stat)
		}
	}
	return func() { cmd.Wait() }
}

// leakProgram leaves a program Build built running, as an orphan (not this process's child).
func leakProgram(t *testing.T) func() {
	bin := Program(t, "./testdata/pause")
	if err := exec.Command(bin, "-exit").Run(); errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("cannot run %s here (an emulated test binary): %v", bin, err)
	} else if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", `"$0" </dev/null >/dev/null 2>&1 & echo $!`, bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	// Until it has exec'd, the orphan runs sh.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); exe == bin {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never ran %s", pid, bin)
		}
	}
	return func() { syscall.Kill(pid, syscall.SIGKILL) }
}

// leakThreadMask leaves a thread bound to one CPU of the process's.
func leakThreadMask(t *testing.T) func() {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	if all.Count() < 2 {
		t.Skip("one CPU: no other mask to leave")
	}
	one := unix.CPUSet{}
	for cpu := 0; ; cpu++ {
		if all.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	set, undo, done := make(chan error), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			set <- err
			runtime.UnlockOSThread()
			return
		}
		set <- nil
		<-undo
		if unix.SchedSetaffinity(0, &all) == nil {
			runtime.UnlockOSThread() // else the thread ends with the goroutine
		}
	}()
	if err := <-set; err != nil {
		t.Fatal(err)
	}
	return func() { close(undo); <-done }
}

func leakShm(t *testing.T) func() {
	path := fmt.Sprintf("/dev/shm/gorun-harness-test-%d", os.Getpid())
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Skip("cannot write /dev/shm:", err)
	}
	return func() {
		if err := os.Remove(path); err == nil {
			t.Errorf("Check did not remove %s", path)
		}
	}
}

func leakTmp(t *testing.T) func() {
	dir, err := os.MkdirTemp("", "leak-")
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.RemoveAll(dir); err != nil || exists(dir) {
			t.Errorf("%s: %v", dir, err)
		}
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }
