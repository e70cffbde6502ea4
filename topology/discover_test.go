package topology

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

// knownFacts stands in for cpuid next to fake trees, so the tests do not
// depend on the CPU they run on. L3 is unknown, as on some VMs.
var knownFacts = cpuFacts{
	vendor: "TestVendor", brand: "Test CPU 9000", family: 6, model: 85,
	lineSize: 64, l1d: 48 << 10, l1i: 32 << 10, l2: 1 << 20,
	features: []string{"AVX2", "AVX512F"},
}

// withL3 is knownFacts with the L3 cpuid reports on bare metal.
var withL3 = func() cpuFacts { f := knownFacts; f.l3 = 32 << 20; return f }()

// unknownFacts is a CPU cpuid knows nothing about.
var unknownFacts = cpuFacts{}

func tree(name string) string { return filepath.Join("testdata", name) }

func mustDiscover(t *testing.T, e env) *Machine {
	t.Helper()
	if e.numCPU == 0 {
		e.numCPU = 2
	}
	m, err := discover(e)
	if err != nil {
		t.Fatalf("discover(%s): %v", e.sysRoot, err)
	}
	return m
}

// coreSets lists each core's CPUs as "pkg/core:cpus".
func coreSets(m *Machine) []string {
	var out []string
	for _, p := range m.Packages {
		for _, c := range p.Cores {
			out = append(out, strconv.Itoa(p.ID)+"/"+strconv.Itoa(c.ID)+":"+c.CPUs.String())
		}
	}
	return out
}

func numaSets(m *Machine) []string {
	var out []string
	for _, n := range m.NUMANodes {
		out = append(out, strconv.Itoa(n.ID)+":"+n.CPUs.String())
	}
	return out
}

// cacheSets lists caches as "name size line:cpus".
func cacheSets(m *Machine) []string {
	var out []string
	for _, c := range m.Caches {
		out = append(out, c.Name()+" "+formatSize(c.SizeBytes)+" "+strconv.Itoa(c.LineSize)+":"+c.SharedCPUs.String())
	}
	return out
}

// hasSource reports whether a source line starts with prefix, or, if
// prefix ends in "$", is the rest of it.
func hasSource(m *Machine, prefix string) bool {
	if line, ok := strings.CutSuffix(prefix, "$"); ok {
		return slices.Contains(m.Sources, line)
	}
	return slices.ContainsFunc(m.Sources, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

func TestDiscoverTrees(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-sys")
	tests := []struct {
		name    string
		env     env
		cpus    string
		cores   []string
		numa    []string
		caches  []string
		line    int
		sources []string // prefixes that must be present; a final "$" asks for the whole line
	}{
		{
			name: "two sockets, SMT, two NUMA nodes",
			env:  env{sysRoot: tree("sys-2socket"), cpu: knownFacts},
			cpus: "0-15",
			cores: []string{"0/0:0,8", "0/1:1,9", "0/2:2,10", "0/3:3,11",
				"1/0:4,12", "1/1:5,13", "1/2:6,14", "1/3:7,15"},
			numa: []string{"0:0-3,8-11", "1:4-7,12-15"},
			caches: []string{
				"L1d 48 KiB 64:0,8", "L1d 48 KiB 64:1,9", "L1d 48 KiB 64:2,10", "L1d 48 KiB 64:3,11",
				"L1d 48 KiB 64:4,12", "L1d 48 KiB 64:5,13", "L1d 48 KiB 64:6,14", "L1d 48 KiB 64:7,15",
				"L1i 32 KiB 64:0,8", "L1i 32 KiB 64:1,9", "L1i 32 KiB 64:2,10", "L1i 32 KiB 64:3,11",
				"L1i 32 KiB 64:4,12", "L1i 32 KiB 64:5,13", "L1i 32 KiB 64:6,14", "L1i 32 KiB 64:7,15",
				"L2 2 MiB 64:0,8", "L2 2 MiB 64:1,9", "L2 2 MiB 64:2,10", "L2 2 MiB 64:3,11",
				"L2 2 MiB 64:4,12", "L2 2 MiB 64:5,13", "L2 2 MiB 64:6,14", "L2 2 MiB 64:7,15",
				"L3 30 MiB 64:0-3,8-11", "L3 30 MiB 64:4-7,12-15",
			},
			line:    64,
			sources: []string{"cpus: sysfs", "cores: sysfs", "caches: sysfs", "numa: sysfs", "line size: cpuid"},
		},
		{
			name:    "no cache information, cpuid knows sizes",
			env:     env{sysRoot: tree("sys-nocache"), cpu: knownFacts},
			cpus:    "0-3",
			cores:   []string{"0/0:0,2", "0/1:1,3"},
			numa:    []string{"0:0-3"},
			caches:  []string{"L1d 48 KiB 64:0,2", "L1d 48 KiB 64:1,3", "L1i 32 KiB 64:0,2", "L1i 32 KiB 64:1,3", "L2 1 MiB 64:0,2", "L2 1 MiB 64:1,3"},
			line:    64,
			sources: []string{"caches: cpuid sizes; sharing assumed: L1 and L2 per core, L3 per package (no cpuN/cache); cpuid reports no L3", "numa: fallback"},
		},
		{
			name:  "no cache information, cpuid knows sizes and an L3",
			env:   env{sysRoot: tree("sys-nocache"), cpu: withL3},
			cpus:  "0-3",
			cores: []string{"0/0:0,2", "0/1:1,3"},
			numa:  []string{"0:0-3"},
			caches: []string{"L1d 48 KiB 64:0,2", "L1d 48 KiB 64:1,3", "L1i 32 KiB 64:0,2", "L1i 32 KiB 64:1,3",
				"L2 1 MiB 64:0,2", "L2 1 MiB 64:1,3", "L3 32 MiB 64:0-3"},
			line:    64,
			sources: []string{"caches: cpuid sizes; sharing assumed: L1 and L2 per core, L3 per package (no cpuN/cache)$"},
		},
		{
			name:    "no cache information, cpuid knows nothing",
			env:     env{sysRoot: tree("sys-nocache"), cpu: unknownFacts},
			cpus:    "0-3",
			cores:   []string{"0/0:0,2", "0/1:1,3"},
			numa:    []string{"0:0-3"},
			line:    DefaultLineSize,
			sources: []string{"caches: unknown", "line size: fallback, 64 bytes"},
		},
		{
			name: "malformed files count as missing",
			env:  env{sysRoot: tree("sys-malformed"), cpu: unknownFacts},
			cpus: "0-2", // bad online list; cpu3 is offline
			// cpu0's core_id is bad: its own core, not merged with cpu1's real core 0.
			cores:   []string{"0/0:0", "0/0:1", "0/2:2"},
			numa:    []string{"1:0-2", "2:"},
			caches:  []string{"L2 0 B 64:0", "L2 512 KiB 128:1-2"},
			line:    DefaultLineSize,
			sources: []string{"cpus: sysfs cpuN directories", "cores: sysfs cpuN/topology; one core per CPU for CPUs 0,2", "caches: sysfs"},
		},
		{
			name:    "no /sys at all",
			env:     env{sysRoot: missing, cpu: knownFacts, numCPU: 3},
			cpus:    "0-2",
			cores:   []string{"0/0:0", "0/1:1", "0/2:2"},
			numa:    []string{"0:0-2"},
			caches:  []string{"L1d 48 KiB 64:0", "L1d 48 KiB 64:1", "L1d 48 KiB 64:2", "L1i 32 KiB 64:0", "L1i 32 KiB 64:1", "L1i 32 KiB 64:2", "L2 1 MiB 64:0", "L2 1 MiB 64:1", "L2 1 MiB 64:2"},
			line:    64,
			sources: []string{"cpus: fallback, runtime.NumCPU", "cores: fallback", "numa: fallback"},
		},
		{
			name: "no /sys, CPUs from the affinity mask",
			env: env{sysRoot: missing, cpu: unknownFacts, affinity: func() (CPUSet, error) {
				return ParseCPUSet("2,5")
			}},
			cpus:    "2,5",
			cores:   []string{"0/2:2", "0/5:5"},
			numa:    []string{"0:2,5"},
			line:    DefaultLineSize,
			sources: []string{"cpus: fallback, the affinity mask", "allowed: sched_getaffinity"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustDiscover(t, tc.env)
			check := func(what string, got, want []string) {
				t.Helper()
				if !slices.Equal(got, want) {
					t.Errorf("%s:\n got %q\nwant %q", what, got, want)
				}
			}
			if got := m.CPUs.String(); got != tc.cpus {
				t.Errorf("CPUs = %q, want %q", got, tc.cpus)
			}
			if !m.Allowed.Equal(m.CPUs) {
				t.Errorf("Allowed = %q, want the online CPUs %q", m.Allowed, m.CPUs)
			}
			check("cores", coreSets(m), tc.cores)
			check("numa", numaSets(m), tc.numa)
			check("caches", cacheSets(m), tc.caches)
			if m.LineSize != tc.line {
				t.Errorf("LineSize = %d, want %d", m.LineSize, tc.line)
			}
			for _, s := range tc.sources {
				if !hasSource(m, s) {
					t.Errorf("no source %q in %q", s, m.Sources)
				}
			}
			for _, p := range m.Packages {
				var u CPUSet
				for _, c := range p.Cores {
					u = u.Union(c.CPUs)
				}
				if !u.Equal(p.CPUs) {
					t.Errorf("package %d CPUs %q, union of cores %q", p.ID, p.CPUs, u)
				}
			}
		})
	}
}

func TestDiscoverProcessFacts(t *testing.T) {
	set := func(s string) func() (CPUSet, error) {
		return func() (CPUSet, error) { return ParseCPUSet(s) }
	}
	quota := func(q float64) func() (float64, string, error) {
		return func() (float64, string, error) { return q, "test quota", nil }
	}
	tests := []struct {
		name     string
		affinity func() (CPUSet, error)
		quota    func() (float64, string, error)
		allowed  string
		usable   int
		source   string
	}{
		{"affinity inside online", set("1,3"), nil, "1,3", 2, "allowed: sched_getaffinity"},
		{"affinity partly offline", set("1,3,20"), nil, "1,3", 2, "allowed: sched_getaffinity"},
		{"affinity all offline", set("20"), nil, "0-3", 4, "allowed: fallback"},
		{"affinity fails", func() (CPUSet, error) { return CPUSet{}, errors.New("EINVAL") }, nil, "0-3", 4, "allowed: fallback"},
		{"quota rounds up", nil, quota(1.5), "0-3", 2, "quota: test quota"},
		{"quota above allowed", set("0"), quota(3), "0", 1, "quota: test quota"},
		{"quota below one CPU", nil, quota(0.2), "0-3", 1, "quota: test quota"},
		{"no quota", nil, quota(0), "0-3", 4, "quota: none"},
		{"quota unreadable", nil, func() (float64, string, error) { return 0, "", errors.New("no cgroup") }, "0-3", 4, "quota: none assumed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustDiscover(t, env{sysRoot: tree("sys-nocache"), affinity: tc.affinity, quota: tc.quota})
			if got := m.Allowed.String(); got != tc.allowed {
				t.Errorf("Allowed = %q, want %q", got, tc.allowed)
			}
			if got := m.UsableCPUs(); got != tc.usable {
				t.Errorf("UsableCPUs() = %d, want %d", got, tc.usable)
			}
			if !hasSource(m, tc.source) {
				t.Errorf("no source %q in %q", tc.source, m.Sources)
			}
		})
	}
}

func TestDiscoverFrom(t *testing.T) {
	m, err := DiscoverFrom(tree("sys-2socket"))
	if err != nil {
		t.Fatal(err)
	}
	if m.CPUs.String() != "0-15" || !m.Allowed.Equal(m.CPUs) || m.Quota != 0 {
		t.Errorf("CPUs %q Allowed %q Quota %g: want the tree's 0-15, no quota", m.CPUs, m.Allowed, m.Quota)
	}
	if len(m.Packages) != 2 || len(m.NUMANodes) != 2 || len(m.Caches) != 26 {
		t.Errorf("%d packages, %d NUMA nodes, %d caches; want 2, 2, 26", len(m.Packages), len(m.NUMANodes), len(m.Caches))
	}
	if real := cpuidFacts(); m.Vendor != real.vendor || m.Model != real.brand {
		t.Errorf("Vendor/Model %q/%q, want cpuid's %q/%q", m.Vendor, m.Model, real.vendor, real.brand)
	}
	if _, err := DiscoverFrom(""); err == nil {
		t.Error("DiscoverFrom(\"\") succeeded")
	}
}

// TestDiscoverRealMachine checks what is stable anywhere and logs the rest:
// on the development VM, 2 CPUs, L1d 48 KiB, L2 1 MiB, line 64 B, one node.
func TestDiscoverRealMachine(t *testing.T) {
	m, err := Discover()
	if err != nil {
		t.Fatal(err)
	}
	// runtime.NumCPU counts the CPUs in the affinity mask at start.
	if got := m.Allowed.Count(); got != runtime.NumCPU() {
		t.Errorf("Allowed %q has %d CPUs, runtime.NumCPU() = %d", m.Allowed, got, runtime.NumCPU())
	}
	if got := m.CPUs.Count(); got < runtime.NumCPU() {
		t.Errorf("CPUs %q has %d CPUs, fewer than runtime.NumCPU() = %d", m.CPUs, got, runtime.NumCPU())
	}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				want, err := ParseCPUSet(v)
				if err == nil && !want.Intersect(m.CPUs).Equal(m.Allowed) {
					t.Errorf("Allowed = %q, /proc/self/status says %q", m.Allowed, want)
				}
			}
		}
	}
	if m.LineSize <= 0 || m.UsableCPUs() < 1 || len(m.Packages) < 1 || len(m.NUMANodes) < 1 {
		t.Errorf("LineSize %d, UsableCPUs %d, %d packages, %d NUMA nodes: want all > 0",
			m.LineSize, m.UsableCPUs(), len(m.Packages), len(m.NUMANodes))
	}
	if !m.Allowed.IsSubsetOf(m.CPUs) {
		t.Errorf("Allowed %q not within CPUs %q", m.Allowed, m.CPUs)
	}
	var b bytes.Buffer
	if err := m.WriteText(&b, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("this machine:\n%s", b.String())
}
