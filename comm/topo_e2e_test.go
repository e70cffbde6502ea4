package comm_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
)

// TestTopologyEndToEnd runs the topology checks of testdata/e2e/topo.go with real rank
// processes: grids' geometry, a stencil's halo exchange, neighbourhood collectives on a grid
// and a graph, CreateGroup, SplitType against the node. With several "nodes" on this machine
// (E2E_NODES; rank r on node r mod k) it checks the count of grid neighbour pairs that talk
// over TCP: row-major as the node layout says, never fewer with reorder, and strictly fewer
// where the nodes are dealt round robin over a 4x2 grid.
func TestTopologyEndToEnd(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, s := range []struct {
		name  string
		env   []string
		nodes []string // E2E_NODES
		ns    []int
	}{
		{"shm", []string{"GORUN_TRANSPORT=shm"}, nil, []int{1, 2, 3, 4, 5, 8, 9}},
		{"tcp", []string{"GORUN_TRANSPORT=tcp"}, nil, []int{1, 2, 3, 4, 5, 8, 9}},
		{"nodes-ab", nil, []string{"a", "b"}, []int{3, 8}},
		{"nodes-abcd", nil, []string{"a", "b", "c", "d"}, []int{8, 9}},
		// Every collective's arguments agreed first, the neighbourhood ones' edge sizes included.
		{"shm-check", []string{"GORUN_TRANSPORT=shm", "GORUN_CHECK=1"}, nil, []int{3, 8}},
	} {
		env := s.env
		if s.nodes != nil {
			env = append(env, "E2E_NODES="+strings.Join(s.nodes, ","))
		}
		for _, n := range s.ns {
			t.Run(fmt.Sprintf("%s/n%d", s.name, n), func(t *testing.T) {
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"topo"}, Env: env, Timeout: 2 * time.Minute})
				if !strings.Contains(res.Stdout, fmt.Sprintf("e2e topo ok on %d ranks", n)) {
					t.Fatalf("no success line:\n%s", res.Stdout)
				}
				lines := crossLines(t, res.Stdout)
				if len(lines) != 2 {
					t.Fatalf("%d cross-node lines, want 2:\n%s", len(lines), res.Stdout)
				}
				for _, l := range lines {
					// Row-major: rank r at cell r, so the pair's nodes are the cells' (or, with
					// one node, TCP only where the transport is forced).
					nodeOf := func(cell int) int { return 0 }
					switch {
					case s.nodes != nil:
						nodeOf = func(cell int) int { return cell % len(s.nodes) }
					case s.name == "tcp":
						nodeOf = func(cell int) int { return cell }
					}
					if want := gridCross(l.dims, l.periodic, nodeOf); l.rowMajor != want {
						t.Errorf("%v periodic %v: %d pairs over TCP in row-major order, want %d", l.dims, l.periodic, l.rowMajor, want)
					}
					if l.reorder > l.rowMajor {
						t.Errorf("%v periodic %v: reorder has %d pairs over TCP, row-major %d", l.dims, l.periodic, l.reorder, l.rowMajor)
					}
					if len(s.nodes) == 4 && n == 8 && l.reorder >= l.rowMajor {
						t.Errorf("%v periodic %v on 4 nodes dealt round robin: reorder has %d pairs over TCP, not fewer than row-major's %d",
							l.dims, l.periodic, l.reorder, l.rowMajor)
					}
				}
				t.Logf("%v\n%s", res.Took.Round(time.Millisecond), strings.Join(topoLines(res.Stdout), "\n"))
			})
		}
	}
}

// crossLine is one "topo cross" line of the rank program.
type crossLine struct {
	dims              []int
	periodic          []bool
	rowMajor, reorder int
}

var crossRE = regexp.MustCompile(`(?m)^topo cross \[([0-9 ]*)\] \[([a-z ]*)\] rowmajor (\d+) reorder (\d+)$`)

func crossLines(t *testing.T, out string) []crossLine {
	t.Helper()
	var lines []crossLine
	for _, m := range crossRE.FindAllStringSubmatch(out, -1) {
		var l crossLine
		for _, f := range strings.Fields(m[1]) {
			k, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("line %q: %v", m[0], err)
			}
			l.dims = append(l.dims, k)
		}
		for _, f := range strings.Fields(m[2]) {
			l.periodic = append(l.periodic, f == "true")
		}
		l.rowMajor, _ = strconv.Atoi(m[3])
		l.reorder, _ = strconv.Atoi(m[4])
		if len(l.dims) != 2 || len(l.periodic) != 2 {
			t.Fatalf("line %q: not a 2-D grid", m[0])
		}
		lines = append(lines, l)
	}
	return lines
}

func topoLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "topo ") {
			lines = append(lines, l)
		}
	}
	return lines
}
