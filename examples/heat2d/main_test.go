package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
	"github.com/gorun-hpc/gorun/launcher"
)

func TestMain(m *testing.M) { jobtest.Main(m) }

// small is an odd-sized grid, uneven over most rank counts, with residuals every 7 steps.
var small = []string{"-nx", "37", "-ny", "29", "-iters", "60", "-every", "7"}

// outcome is what a run prints that must not depend on the ranks: the residual lines, the
// checksum line, and the final residual of the summary.
type outcome struct {
	lines []string
	final string
}

var summary = regexp.MustCompile(`(?m)^heat2d: 37x29 grid on (\d+) ranks? \((\d+)x(\d+)(?:, serial)?\), 60 iterations, final residual (\S+)$`)

// parse picks the outcome out of stdout and checks that n ranks ran it in a grid of n blocks.
func parse(t *testing.T, stdout string, n int) outcome {
	t.Helper()
	var o outcome
	for line := range strings.Lines(stdout) {
		if strings.HasPrefix(line, "iter ") || strings.HasPrefix(line, "checksum ") {
			o.lines = append(o.lines, strings.TrimSuffix(line, "\n"))
		}
	}
	m := summary.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no summary line in stdout:\n%s", stdout)
	}
	var ranks, px, py int
	fmt.Sscan(m[1]+" "+m[2]+" "+m[3], &ranks, &px, &py)
	if ranks != n || px*py != n {
		t.Fatalf("summary %q: want %d ranks in a grid of as many blocks", m[0], n)
	}
	o.final = m[4]
	if len(o.lines) != 60/7+2 { // every 7th step, the last, the checksum
		t.Fatalf("%d residual and checksum lines, want %d:\n%s", len(o.lines), 60/7+2, stdout)
	}
	return o
}

// The grid, its residuals and its final residual are bit for bit those of the serial run on
// every number of ranks (even, odd, prime, square), over shared memory, TCP, and fake nodes
// (shared memory within one, TCP between), with and without reordering.
func TestMatchesSerial(t *testing.T) {
	prog := jobtest.Program(t, ".")
	ref := jobtest.MustSucceed(t, prog, jobtest.Job{N: 1, Args: append([]string{"-serial"}, small...), Timeout: time.Minute})
	want := parse(t, ref.Stdout, 1)

	type tc struct {
		name  string
		n     int
		env   []string
		hosts []launcher.Host // nil: every rank on this node
		args  []string
	}
	shm, tcp := []string{"GORUN_TRANSPORT=shm"}, []string{"GORUN_TRANSPORT=tcp"}
	noReorder := []string{"-reorder=false"}
	cases := []tc{
		{name: "shm/n1", n: 1, env: shm},
		{name: "shm/n3", n: 3, env: shm},
		{name: "shm/n4", n: 4, env: shm},
		{name: "shm/n6/no-reorder", n: 6, env: shm, args: noReorder},
		{name: "shm/n8", n: 8, env: shm},
		{name: "shm/n9", n: 9, env: shm},
		{name: "tcp/n2", n: 2, env: tcp},
		{name: "tcp/n5", n: 5, env: tcp},
		{name: "tcp/n9", n: 9, env: tcp},
		{name: "nodes-2+2/n4", n: 4, hosts: hosts(2, 2)},
		{name: "nodes-1+4+3/n8", n: 8, hosts: hosts(1, 4, 3)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := jobtest.MustSucceed(t, prog, jobtest.Job{N: c.n, Args: append(slices.Clone(small), c.args...), Env: c.env,
				Hosts: c.hosts, Timeout: time.Minute})
			got := parse(t, res.Stdout, c.n)
			if !slices.Equal(got.lines, want.lines) || got.final != want.final {
				t.Fatalf("got\n%s\nfinal residual %s\nwant (serial)\n%s\nfinal residual %s",
					strings.Join(got.lines, "\n"), got.final, strings.Join(want.lines, "\n"), want.final)
			}
		})
	}
}

// A grid with fewer rows than the grid of ranks has is refused, not computed wrong.
func TestTooSmall(t *testing.T) {
	prog := jobtest.Program(t, ".")
	res := jobtest.Run(t, prog, jobtest.Job{N: 2, Args: []string{"-nx", "9", "-ny", "1", "-iters", "3"}, Timeout: time.Minute})
	if res.Err == nil || !strings.Contains(res.Stderr, "a 9x1 grid cannot be cut into 1x2 blocks") {
		t.Fatalf("job ended with %v, want a failure naming the blocks; stderr:\n%s", res.Err, res.Stderr)
	}
}

func TestSpan(t *testing.T) {
	for _, tc := range []struct{ n, p int }{{29, 1}, {29, 3}, {37, 3}, {9, 9}, {10, 4}, {512, 8}} {
		next := 0
		for c := range tc.p {
			start, size := span(tc.n, tc.p, c)
			if start != next || size < tc.n/tc.p || size > tc.n/tc.p+1 {
				t.Fatalf("span(%d, %d, %d) = %d, %d: not the next even share after %d", tc.n, tc.p, c, start, size, next)
			}
			next = start + size
		}
		if next != tc.n {
			t.Fatalf("the %d spans of %d cells cover %d", tc.p, tc.n, next)
		}
	}
}

// hosts names one fake host per entry with that many slots; the first is this machine.
func hosts(slots ...int) []launcher.Host {
	hs := make([]launcher.Host, len(slots))
	for i, s := range slots {
		hs[i] = launcher.Host{Name: fmt.Sprintf("fake-%c", 'a'+i), Slots: s}
	}
	hs[0].Name = "localhost"
	return hs
}
