package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/launcher"
	"github.com/gorun-hpc/gorun/topology"
)

// runInProcess runs gorun's run with args and returns stdout, failing the
// test on a non-zero exit or any stderr.
func runInProcess(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, fakeEnv(nil), nil, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("gorun %q: exit %d, stderr %q", args, code, stderr.String())
	}
	return stdout.String()
}

// `gorun --topology` prints the machine: its CPUs, line size and cores, and
// no placements.
func TestTopologyText(t *testing.T) {
	m, err := topology.Discover()
	if err != nil {
		t.Fatal(err)
	}
	out := runInProcess(t, "--topology")
	header := fmt.Sprintf("%d CPUs usable of %d, line %d B)\n", m.UsableCPUs(), m.CPUs.Count(), m.LineSize)
	if !strings.HasPrefix(out, "Machine (") || !strings.Contains(out, header) {
		t.Errorf("output lacks the header %q:\n%s", header, out)
	}
	if got, want := strings.Count(out, "Core "), len(m.Cores()); got != want {
		t.Errorf("%d cores printed, want %d:\n%s", got, want, out)
	}
	if strings.Contains(out, "rank ") || strings.Contains(out, "Placement:") {
		t.Errorf("placements printed without -n:\n%s", out)
	}

	out = runInProcess(t, "--topology", "-n", "3", "--bind-to", "core")
	for r := range 3 {
		if !strings.Contains(out, fmt.Sprintf("\nrank %d -> CPUs ", r)) {
			t.Errorf("no placement of rank %d:\n%s", r, out)
		}
	}
	if !strings.Contains(out, "\nPlacement: 3 ranks on ") || !strings.Contains(out, "--bind-to core, --map-by core") {
		t.Errorf("no placement summary:\n%s", out)
	}
}

// `gorun --topology --json -n 4` is JSON for tools, with 4 placements: the
// ones the launcher would apply. It runs the real binary.
func TestTopologyJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin.gorun, "--topology", "--json", "-n", "4").Output()
	if err != nil {
		t.Fatalf("gorun --topology --json -n 4: %v", err)
	}
	var got struct {
		CPUs       string `json:"cpus"`
		LineSize   int    `json:"line_size"`
		UsableCPUs int    `json:"usable_cpus"`
		Placement  []struct {
			Rank       int    `json:"rank"`
			CPUs       string `json:"cpus"`
			GOMAXPROCS int    `json:"gomaxprocs"`
		} `json:"placement"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	want, err := launcher.Place(4, topology.BindDefault, topology.MapCore)
	if err != nil {
		t.Fatal(err)
	}
	if got.CPUs != want.Machine.CPUs.String() || got.LineSize != want.Machine.LineSize || len(got.Placement) != 4 {
		t.Fatalf("cpus %q, line size %d, %d placements; want %q, %d, 4",
			got.CPUs, got.LineSize, len(got.Placement), want.Machine.CPUs, want.Machine.LineSize)
	}
	for r, p := range got.Placement {
		w := want.Ranks[r]
		if p.Rank != r || p.CPUs != w.CPUs.String() || p.GOMAXPROCS != w.GOMAXPROCS {
			t.Errorf("placement %d: %+v, want rank %d on %s, GOMAXPROCS %d", r, p, r, w.CPUs, w.GOMAXPROCS)
		}
	}
}

var helloLine = regexp.MustCompile(`(?m)^hello from rank (\d+) of 2 on \S+ \(pid \d+, cpus (\S+), GOMAXPROCS (\d+)\)$`)

// `gorun -n 2 --bind-to core ./examples/hello`: each rank reads back its own
// CPU (Cpus_allowed_list) and GOMAXPROCS.
func TestHelloBindCore(t *testing.T) {
	want, err := launcher.Place(2, topology.BindCore, topology.MapCore)
	if err != nil {
		t.Fatal(err)
	}
	hello := harness.Program(t, "../../examples/hello")
	g := startGorun(t, "-n", "2", "--bind-to", "core", hello)
	out, code := g.wait(t)
	if code != 0 {
		t.Fatalf("exit status %d, stderr:\n%s", code, &g.stderr)
	}
	lines := helloLine.FindAllStringSubmatch(out, -1)
	if len(lines) != 2 {
		t.Fatalf("want 2 hello lines:\n%s", out)
	}
	var sets [2]topology.CPUSet
	for _, m := range lines {
		r, _ := strconv.Atoi(m[1])
		cpus, err := topology.ParseCPUSet(m[2])
		if err != nil {
			t.Fatal(err)
		}
		sets[r] = cpus
		w := want.Ranks[r]
		if gmp, _ := strconv.Atoi(m[3]); !cpus.Equal(w.CPUs) || gmp != w.GOMAXPROCS {
			t.Errorf("rank %d on CPUs %s with GOMAXPROCS %d; want CPUs %s, GOMAXPROCS %d", r, cpus, gmp, w.CPUs, w.GOMAXPROCS)
		}
		if cpus.Count() == 1 && m[3] != "1" {
			t.Errorf("rank %d: one CPU, GOMAXPROCS %s", r, m[3])
		}
	}
	if !want.Ranks[0].CPUs.Intersect(want.Ranks[1].CPUs).IsEmpty() {
		t.Logf("not checking that the ranks' CPUs are disjoint: the allowed CPUs (%s) form one core", want.Machine.Allowed)
	} else if !sets[0].Intersect(sets[1]).IsEmpty() {
		t.Errorf("the ranks share CPUs: %s and %s", sets[0], sets[1])
	}
}

// -x GOMAXPROCS=3 wins over the placement's GOMAXPROCS.
func TestGorunUserGOMAXPROCS(t *testing.T) {
	g := startGorun(t, "-n", "2", "-x", "GOMAXPROCS=3", bin.placement)
	out, code := g.wait(t)
	if code != 0 {
		t.Fatalf("exit status %d, stderr:\n%s", code, &g.stderr)
	}
	if n := strings.Count(out, " gomaxprocs=3 "); n != 2 {
		t.Errorf("%d of 2 ranks have GOMAXPROCS 3:\n%s", n, out)
	}
}
