package topology

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
)

// Discover describes the machine this process runs on: cpuid for what the
// CPU reports, /sys for what the OS reports, sched_getaffinity for the
// allowed CPUs and the cgroup for a CPU quota. A missing or malformed source
// is not an error: the affected fields get their documented fallback and
// Sources says so. The returned error is reserved for misuse; today Discover
// always succeeds.
func Discover() (*Machine, error) {
	return discover(env{
		sysRoot:  "/sys",
		cpu:      cpuidFacts(),
		numCPU:   runtime.NumCPU(),
		affinity: schedAffinity,
		quota:    func() (float64, string, error) { return cgroupQuota("/") },
	})
}

// DiscoverFrom describes the machine in the sysfs tree rooted at sysRoot
// (the directory that holds devices/system/cpu), for tests and tools that
// inspect another machine's tree. What the CPU itself reports through cpuid
// (vendor, model, features, line size, and cache sizes sysfs lacks) is still
// this CPU's. The process's own affinity and cgroup are not read, since they
// do not belong to the tree: Allowed is every online CPU and Quota is 0.
// A sysRoot that does not exist gives the no-/sys fallbacks.
func DiscoverFrom(sysRoot string) (*Machine, error) {
	if sysRoot == "" {
		return nil, errors.New("discover topology: empty sysfs root")
	}
	return discover(env{sysRoot: sysRoot, cpu: cpuidFacts(), numCPU: runtime.NumCPU()})
}

// env is everything discovery reads, so that tests can replace each source.
type env struct {
	sysRoot  string
	cpu      cpuFacts
	numCPU   int                             // CPUs assumed when nothing lists them
	affinity func() (CPUSet, error)          // nil: Allowed is CPUs
	quota    func() (float64, string, error) // nil: no quota; string names the source
}

func discover(e env) (*Machine, error) {
	m := &Machine{
		Vendor:      e.cpu.vendor,
		Model:       e.cpu.brand,
		Family:      e.cpu.family,
		ModelNumber: e.cpu.model,
		Features:    slices.Clone(e.cpu.features),
	}
	cpuDir := filepath.Join(e.sysRoot, "devices", "system", "cpu")

	var affinity CPUSet
	var affErr error
	if e.affinity != nil {
		affinity, affErr = e.affinity()
	}
	m.discoverCPUs(cpuDir, affinity, e.numCPU)
	m.discoverCores(cpuDir)
	m.discoverCaches(cpuDir, e.cpu)
	m.discoverNUMA(filepath.Join(e.sysRoot, "devices", "system", "node"))
	m.discoverLineSize(e.cpu.lineSize)

	switch {
	case e.affinity == nil:
		m.Allowed = m.CPUs
		m.note("allowed", "all online CPUs (process affinity not read)")
	case affErr != nil:
		m.Allowed = m.CPUs
		m.note("allowed", fmt.Sprintf("fallback, all online CPUs (%v)", affErr))
	case affinity.Intersect(m.CPUs).IsEmpty():
		m.Allowed = m.CPUs
		m.note("allowed", "fallback, all online CPUs (affinity "+affinity.String()+" has no online CPU)")
	default:
		m.Allowed = affinity.Intersect(m.CPUs)
		m.note("allowed", "sched_getaffinity")
	}
	if e.quota != nil {
		q, src, err := e.quota()
		switch {
		case err != nil:
			m.note("quota", fmt.Sprintf("none assumed (%v)", err))
		case q > 0:
			m.Quota = q
			m.note("quota", src)
		default:
			m.note("quota", "none")
		}
	}
	return m, nil
}

func (m *Machine) note(fact, origin string) {
	m.Sources = append(m.Sources, fact+": "+origin)
}

// discoverCPUs finds the online set: the online file, else the cpuN
// directories, else the affinity mask, else CPUs 0..numCPU-1.
func (m *Machine) discoverCPUs(cpuDir string, affinity CPUSet, numCPU int) {
	if set, ok := readCPUSet(filepath.Join(cpuDir, "online")); ok && !set.IsEmpty() {
		m.CPUs = set
		m.note("cpus", "sysfs devices/system/cpu/online")
		return
	}
	if set := onlineFromDirs(cpuDir); !set.IsEmpty() {
		m.CPUs = set
		m.note("cpus", "sysfs cpuN directories (no usable online file)")
		return
	}
	if !affinity.IsEmpty() {
		m.CPUs = affinity
		m.note("cpus", "fallback, the affinity mask (no sysfs cpu list)")
		return
	}
	m.CPUs = cpuRange(0, min(max(numCPU, 1), MaxCPUID+1)-1)
	m.note("cpus", "fallback, runtime.NumCPU (no sysfs cpu list)")
}

// discoverCores groups online CPUs into cores and packages by core_id and
// physical_package_id. A CPU whose ids are unreadable becomes a core of its
// own in package 0 (or its known package), never merged with a real core.
func (m *Machine) discoverCores(cpuDir string) {
	type key struct {
		pkg, core int
		guessed   bool // core id is the CPU id, not a core_id
	}
	cores := map[key]*setBuilder{}
	var guessed []int
	for _, cpu := range m.CPUs.CPUs() {
		k := key{}
		if p, ok := readInt(cpuPath(cpuDir, cpu, "topology", "physical_package_id")); ok && p >= 0 {
			k.pkg = p
		}
		if c, ok := readInt(cpuPath(cpuDir, cpu, "topology", "core_id")); ok && c >= 0 {
			k.core = c
		} else {
			k.core, k.guessed = cpu, true
			guessed = append(guessed, cpu)
		}
		if cores[k] == nil {
			cores[k] = &setBuilder{}
		}
		_ = cores[k].add(cpu, cpu) // cpu came from a valid CPUSet
	}
	byPkg := map[int][]Core{}
	for k, b := range cores {
		byPkg[k.pkg] = append(byPkg[k.pkg], Core{ID: k.core, CPUs: b.set()})
	}
	for id, cs := range byPkg {
		slices.SortFunc(cs, func(a, b Core) int {
			return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.CPUs.First(), b.CPUs.First()))
		})
		p := Package{ID: id, Cores: cs}
		for _, c := range cs {
			p.CPUs = p.CPUs.Union(c.CPUs)
		}
		m.Packages = append(m.Packages, p)
	}
	slices.SortFunc(m.Packages, func(a, b Package) int { return cmp.Compare(a.ID, b.ID) })

	switch n := len(guessed); {
	case n == 0:
		m.note("cores", "sysfs cpuN/topology")
	case n == m.CPUs.Count():
		m.note("cores", "fallback, one core per CPU (no cpuN/topology/core_id)")
	default:
		set, _ := NewCPUSet(guessed...)
		m.note("cores", "sysfs cpuN/topology; one core per CPU for CPUs "+set.String()+" (core_id unreadable)")
	}
}

// discoverCaches reads every online CPU's cache indexes and keeps one entry
// per distinct instance. Without any cache directory it falls back to
// cpuid's sizes with assumed sharing (see cachesFromCPUID).
func (m *Machine) discoverCaches(cpuDir string, f cpuFacts) {
	type key struct {
		level int
		typ   string
		cpus  string
	}
	seen := map[key]bool{}
	for _, cpu := range m.CPUs.CPUs() {
		self := cpuRange(cpu, cpu)
		for _, ci := range readCacheIndexes(cpuDir, cpu) {
			// A cache is shared by at least the CPU that lists it; offline
			// CPUs in the list are dropped so that every CPU's view of one
			// instance gives the same set.
			shared := ci.shared.Union(self).Intersect(m.CPUs)
			k := key{ci.level, ci.typ, shared.String()}
			if seen[k] {
				continue
			}
			seen[k] = true
			size := ci.size
			if size == 0 {
				size = f.size(ci.level, ci.typ)
			}
			m.Caches = append(m.Caches, Cache{Level: ci.level, Type: ci.typ, SizeBytes: size, LineSize: ci.lineSize, SharedCPUs: shared})
		}
	}
	switch {
	case len(m.Caches) > 0:
		m.note("caches", "sysfs cpuN/cache")
	default:
		m.Caches = cachesFromCPUID(f, m.Packages, 0)
		if len(m.Caches) > 0 {
			origin := "cpuid sizes; sharing assumed: L1 and L2 per core, L3 per package (no cpuN/cache)"
			if f.l3 <= 0 {
				// Some hypervisors hide the L3; it is left out, not invented.
				origin += "; cpuid reports no L3"
			}
			m.note("caches", origin)
		} else {
			m.note("caches", "unknown (no cpuN/cache, cpuid reports no sizes)")
		}
	}
	slices.SortStableFunc(m.Caches, func(a, b Cache) int {
		return cmp.Or(cmp.Compare(a.Level, b.Level), cmp.Compare(a.Type, b.Type),
			cmp.Compare(a.SharedCPUs.First(), b.SharedCPUs.First()))
	})
}

// discoverNUMA reads nodeN/cpulist; without any readable node, one node 0
// holds every CPU. A node whose cpulist is unreadable is left out.
func (m *Machine) discoverNUMA(nodeDir string) {
	for _, id := range indexedDirs(nodeDir, "node") {
		set, ok := readCPUSet(filepath.Join(nodeDir, "node"+strconv.Itoa(id), "cpulist"))
		if !ok {
			continue
		}
		m.NUMANodes = append(m.NUMANodes, NUMANode{ID: id, CPUs: set.Intersect(m.CPUs)})
	}
	if len(m.NUMANodes) > 0 {
		m.note("numa", "sysfs devices/system/node")
		return
	}
	m.NUMANodes = []NUMANode{{ID: 0, CPUs: m.CPUs}}
	m.note("numa", "fallback, one node (no devices/system/node)")
}

// discoverLineSize picks cpuid's line size, else sysfs's for L1, else the
// default, and gives caches that reported none the machine's.
func (m *Machine) discoverLineSize(fromCPUID int) {
	m.LineSize = fromCPUID
	origin := "cpuid"
	if m.LineSize <= 0 {
		m.LineSize, origin = DefaultLineSize, fmt.Sprintf("fallback, %d bytes (unknown to cpuid and sysfs)", DefaultLineSize)
		for _, c := range m.Caches {
			if c.Level == 1 && c.LineSize > 0 {
				m.LineSize, origin = c.LineSize, "sysfs coherency_line_size"
				break
			}
		}
	}
	m.note("line size", origin)
	for i := range m.Caches {
		if m.Caches[i].LineSize <= 0 {
			m.Caches[i].LineSize = m.LineSize
		}
	}
}
