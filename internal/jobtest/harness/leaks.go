package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/shmname"
)

// settle is how long Check gives descriptors and goroutines to go: those of a job that has
// just ended (output forwarders, exec's copying goroutines) may take a moment.
const settle = 2 * time.Second

// CheckLeaks records the state of the test process (Take) and, when the test ends, fails it
// for whatever has been left behind since (Check). Called first thing in a test, its check
// runs after the test's own cleanups (t.TempDir's removal, a job's cancellation).
func CheckLeaks(t testing.TB) {
	t.Helper()
	s := Take(t)
	t.Cleanup(func() { s.Check(t) })
}

// A Snapshot is the state of the test process that Check compares with.
type Snapshot struct {
	children   map[int]bool      // pids whose parent is this process
	programs   map[int]bool      // pids running a program Build built, anyone's children
	fds        map[string]string // open descriptor → what it refers to
	goroutines map[string]bool   // the ids of the goroutines then
	mask       string            // the process's CPU mask (a Cpus_allowed_list)
	odd        map[string]string // thread → its CPU mask, for threads whose mask was not mask
	shm        map[string]bool   // gorun's entries in /dev/shm
	tmp        string            // the TMPDIR Main set; "" without Main
	tmpEntries map[string]bool
}

// Take records the state of the test process now.
func Take(t testing.TB) *Snapshot {
	t.Helper()
	s, err := take()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func take() (*Snapshot, error) {
	s := &Snapshot{children: map[int]bool{}, programs: map[int]bool{}, goroutines: goroutineIDs()}
	var err error
	if s.fds, err = openFDs(); err != nil {
		return nil, err
	}
	procs, err := processes()
	if err != nil {
		return nil, err
	}
	binDir := programDir()
	for _, p := range procs {
		if p.ppid == os.Getpid() {
			s.children[p.pid] = true
		}
		if binDir != "" && strings.HasPrefix(p.exe, binDir) {
			s.programs[p.pid] = true
		}
	}
	if s.mask, err = cpusAllowed("/proc/thread-self/status"); err != nil {
		return nil, err
	}
	masks, err := threadMasks()
	if err != nil {
		return nil, err
	}
	s.odd = make(map[string]string)
	for tid, m := range masks {
		if m != s.mask {
			s.odd[tid] = m
		}
	}
	if s.shm, err = shmEntries(); err != nil {
		return nil, err
	}
	builds.Lock()
	s.tmp = builds.tmp
	builds.Unlock()
	if s.tmp != "" {
		if s.tmpEntries, err = dirEntries(s.tmp); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Check fails the test for everything the test process has now that it did not have when s
// was taken:
//
//   - a child process, even a zombie (a test process that is a child subreaper adopts
//     orphaned ranks, and so sees them too);
//   - a process anywhere, whoever's child, running a program that Build built;
//   - a thread whose CPU mask is not the process's (a rank's, left on the launcher's spawner
//     thread);
//   - an entry of gorun's in /dev/shm (shmname.Prefix), which it removes;
//   - an entry in the TMPDIR that Main set, which it removes;
//   - open descriptors, or goroutines, that were not there then, still after settle. They
//     are compared by identity (descriptor and what it refers to; goroutine id), not by
//     count: a goroutine of an earlier test ending meanwhile must not hide a new one.
//
// Processes, threads and entries are checked at once: whatever started them has returned.
func (s *Snapshot) Check(t testing.TB) {
	t.Helper()
	s.check(t)
}

// reporter is the part of testing.TB that check uses.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

func (s *Snapshot) check(r reporter) {
	r.Helper()
	s.checkProcesses(r)
	s.checkThreads(r)
	s.checkEntries(r)
	deadline := time.Now().Add(settle)
	for {
		fds, err := openFDs()
		if err != nil {
			r.Errorf("%v", err)
			return
		}
		var added []string
		for fd, what := range fds {
			if s.fds[fd] != what {
				added = append(added, fd+" → "+what)
			}
		}
		newG := 0
		for id := range goroutineIDs() {
			if !s.goroutines[id] && id != currentGoroutine() {
				newG++
			}
		}
		if len(added) == 0 && newG == 0 {
			return
		}
		if time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if len(added) > 0 {
			slices.Sort(added)
			r.Errorf("leak: %d open descriptors, %d at the start; new or changed: %s", len(fds), len(s.fds), strings.Join(added, ", "))
		}
		if newG > 0 {
			r.Errorf("leak: %d goroutines that were not there at the start\n%s", newG, allStacks())
		}
		return
	}
}

// allStacks is every goroutine's stack, as runtime.Stack writes them.
func allStacks() []byte {
	for n := 1 << 16; ; n *= 2 {
		buf := make([]byte, n)
		if k := runtime.Stack(buf, true); k < n {
			return buf[:k]
		}
	}
}

var goroutineHeader = regexp.MustCompile(`(?m)^goroutine (\d+) \[`)

// goroutineIDs is the set of the ids of the goroutines now.
func goroutineIDs() map[string]bool {
	ids := make(map[string]bool)
	for _, m := range goroutineHeader.FindAllSubmatch(allStacks(), -1) {
		ids[string(m[1])] = true
	}
	return ids
}

// currentGoroutine is the id of the calling goroutine.
func currentGoroutine() string {
	buf := make([]byte, 64)
	m := goroutineHeader.FindSubmatch(buf[:runtime.Stack(buf, false)])
	if m == nil {
		return ""
	}
	return string(m[1])
}

func (s *Snapshot) checkProcesses(r reporter) {
	r.Helper()
	procs, err := processes()
	if err != nil {
		r.Errorf("%v", err)
		return
	}
	binDir := programDir()
	for _, p := range procs {
		if p.ppid == os.Getpid() && !s.children[p.pid] {
			r.Errorf("leak: child process %d (%s, state %s) left behind", p.pid, p.name, p.state)
		}
		if binDir != "" && strings.HasPrefix(p.exe, binDir) && !s.programs[p.pid] {
			r.Errorf("leak: process %d (%s, parent %d) left running", p.pid, p.exe, p.ppid)
		}
	}
}

func (s *Snapshot) checkThreads(r reporter) {
	r.Helper()
	masks, err := threadMasks()
	if err != nil {
		r.Errorf("%v", err)
		return
	}
	for tid, m := range masks {
		if m != s.mask && s.odd[tid] != m {
			r.Errorf("leak: thread %s has CPU mask %s, the process has %s", tid, m, s.mask)
		}
	}
}

func (s *Snapshot) checkEntries(r reporter) {
	r.Helper()
	shm, err := shmEntries()
	if err != nil {
		r.Errorf("%v", err)
	}
	for _, e := range newEntries(s.shm, shm) {
		r.Errorf("leak: /dev/shm/%s left behind (now removed)", e)
		os.Remove(filepath.Join("/dev/shm", e))
	}
	if s.tmp == "" {
		return
	}
	tmp, err := dirEntries(s.tmp)
	if err != nil {
		r.Errorf("%v", err)
	}
	for _, e := range newEntries(s.tmpEntries, tmp) {
		r.Errorf("leak: %s left behind in TMPDIR (now removed)", e)
		os.RemoveAll(filepath.Join(s.tmp, e))
	}
}

// ShmEntries lists gorun's entries in /dev/shm (names without the directory). Other
// software's, an MPI library's running beside the tests, are none of the tests' business.
func ShmEntries(t testing.TB) map[string]bool {
	t.Helper()
	m, err := shmEntries()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func shmEntries() (map[string]bool, error) {
	dir, prefix := filepath.Split(shmname.Prefix)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	m := make(map[string]bool)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			m[e.Name()] = true
		}
	}
	return m, nil
}

func dirEntries(dir string) (map[string]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	m := make(map[string]bool)
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m, nil
}

// newEntries lists, sorted, the names in after that are not in before.
func newEntries(before, after map[string]bool) []string {
	var added []string
	for e := range after {
		if !before[e] {
			added = append(added, e)
		}
	}
	slices.Sort(added)
	return added
}

// openFDs maps the process's open descriptors (the one reading the list among them) to what
// each refers to.
func openFDs() (map[string]string, error) {
	const dir = "/proc/self/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	m := make(map[string]string, len(ents))
	for _, e := range ents {
		what, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			what = "?" // the descriptor ReadDir read with, closed since
		}
		m[e.Name()] = what
	}
	return m, nil
}

// proc is one process as /proc shows it.
type proc struct {
	pid, ppid   int
	name, state string // the command name and state of /proc/PID/stat
	exe         string // its executable, "" where unreadable (a zombie's, another user's); under emulation, the program the emulator runs
}

// processes lists every process of the machine.
func processes() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	var procs []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may contain spaces and parentheses.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(stat[end+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		exe, _ := os.Readlink("/proc/" + e.Name() + "/exe")
		if emulator != "" {
			// qemu-user runs the program in its own process: /proc shows qemu's executable,
			// and the program as its first argument.
			if args, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil {
				if a := bytes.Split(args, []byte{0}); len(a) > 1 && filepath.Base(string(a[0])) == filepath.Base(emulator) {
					exe = string(a[1])
				}
			}
		}
		procs = append(procs, proc{pid: pid, ppid: ppid, name: string(stat[open+1 : end]), state: f[0],
			exe: strings.TrimSuffix(exe, " (deleted)")})
	}
	return procs, nil
}

// programDir is the directory under which Build puts every program, "" without Main.
func programDir() string {
	builds.Lock()
	defer builds.Unlock()
	if builds.root == "" {
		return ""
	}
	return filepath.Join(builds.root, "bin") + string(filepath.Separator)
}

// threadMasks maps each thread of the process to its CPU mask. Threads that end meanwhile are
// left out.
func threadMasks() (map[string]string, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	m := make(map[string]string, len(tasks))
	for _, task := range tasks {
		if mask, err := cpusAllowed("/proc/self/task/" + task.Name() + "/status"); err == nil {
			m[task.Name()] = mask
		}
	}
	return m, nil
}

// cpusAllowed returns the Cpus_allowed_list of a /proc status file.
func cpusAllowed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("harness: %s: no Cpus_allowed_list", path)
}

// ProcessesOf lists the pids of the processes, anyone's children, that run the program at
// prog (under GORUN_TEST_EMULATOR too).
func ProcessesOf(prog string) []int {
	procs, _ := processes()
	var pids []int
	for _, p := range procs {
		if p.exe == prog || p.exe == prog+".prog" {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// WaitGone waits up to within for every process running prog to end, and fails the test,
// after killing them, for those that do not: ranks that another launcher started (Hydra,
// Slurm, Open MPI) or that run on another host are not this process's children, so
// CheckLeaks sees them only once they are orphaned; this waits for them to end themselves.
func WaitGone(t testing.TB, prog string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pids := ProcessesOf(prog)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("leak: processes of %s left running after %v: %v", filepath.Base(prog), within, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
