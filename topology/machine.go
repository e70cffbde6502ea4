package topology

import (
	"math"
	"slices"
	"strconv"
)

// Cache types, as sysfs spells them.
const (
	CacheData        = "Data"
	CacheInstruction = "Instruction"
	CacheUnified     = "Unified"
)

// DefaultLineSize is the cache line size assumed when neither cpuid nor sysfs
// reports one. 64 bytes is right for every current x86-64 part and most
// arm64 ones; a wrong guess costs false sharing, never correctness.
const DefaultLineSize = 64

// Machine is what discovery found about the machine this process runs on (or
// a fake sysfs tree). Every field has a value even when its source was
// missing; Sources says which values were read and which are fallbacks.
//
// A Machine is plain data: Discover returns a fresh one, and it is safe for
// concurrent use as long as nobody modifies it. JSON field names are stable.
type Machine struct {
	// Vendor is cpuid's vendor name ("AMD", "Intel", …) or the raw vendor
	// string; "" if unknown. Model is the brand string, e.g. "AMD EPYC 9454".
	Vendor string `json:"vendor"`
	Model  string `json:"model"`
	// Family and ModelNumber are cpuid's family and model numbers (0 if unknown).
	Family      int `json:"family"`
	ModelNumber int `json:"model_number"`
	// Features lists the CPU features, of a fixed set that matters for
	// messaging and reductions, that the CPU has (cpuid names: "AVX2",
	// "AVX512F", "ERMS", …). See HasFeature.
	Features []string `json:"features"`
	// LineSize is the cache line size in bytes: cpuid's, else sysfs's L1
	// coherency_line_size, else DefaultLineSize. Always > 0.
	LineSize int `json:"line_size"`
	// CPUs is the set of online CPUs. Never empty.
	CPUs CPUSet `json:"cpus"`
	// Allowed is the subset of CPUs this process may run on
	// (sched_getaffinity). Never empty: it is CPUs when the affinity is
	// unknown, and for DiscoverFrom, which describes a tree, not a process.
	Allowed CPUSet `json:"allowed"`
	// Quota is the cgroup CPU bandwidth limit in CPUs (quota/period, e.g.
	// 1.5), the smallest along the process's cgroup path; 0 if none is set.
	Quota float64 `json:"quota"`
	// Packages are the sockets, ascending by ID, each with its cores.
	Packages []Package `json:"packages"`
	// NUMANodes are the memory nodes, ascending by ID. A node may have no
	// CPUs (memory-only nodes). Without NUMA information: one node 0 with
	// every CPU.
	NUMANodes []NUMANode `json:"numa_nodes"`
	// Caches are the distinct cache instances (one entry per level, type and
	// set of sharing CPUs), ordered by level, type, then lowest CPU.
	Caches []Cache `json:"caches"`
	// Sources records, one "fact: origin" line each, what was read and what
	// fell back, e.g. "numa: fallback, one node (no devices/system/node)".
	Sources []string `json:"sources"`
}

// Package is one physical package (socket).
type Package struct {
	// ID is physical_package_id, or 0 when unknown.
	ID int `json:"id"`
	// CPUs is the union of the cores' CPUs.
	CPUs CPUSet `json:"cpus"`
	// Cores are ordered by ID, then by lowest CPU.
	Cores []Core `json:"cores"`
}

// Core is one physical core; its CPUs are the hardware threads (SMT
// siblings) that share it.
type Core struct {
	// ID is core_id, unique within its package only. When sysfs gives none,
	// each CPU is its own core and ID is the CPU id.
	ID   int    `json:"id"`
	CPUs CPUSet `json:"cpus"`
}

// NUMANode is one NUMA memory node and the CPUs local to it.
type NUMANode struct {
	ID   int    `json:"id"`
	CPUs CPUSet `json:"cpus"`
}

// Cache is one cache instance and the CPUs that share it.
type Cache struct {
	// Level is 1, 2, 3…
	Level int `json:"level"`
	// Type is CacheData, CacheInstruction or CacheUnified.
	Type string `json:"type"`
	// SizeBytes is the size of this instance; 0 means unknown.
	SizeBytes int64 `json:"size_bytes"`
	// LineSize is the line size in bytes; the machine's when not reported.
	LineSize int `json:"line_size"`
	// SharedCPUs are the online CPUs that share this instance.
	SharedCPUs CPUSet `json:"shared_cpus"`
}

// Name is the short name lstopo uses: "L1d", "L1i", "L2", "L3"…
func (c Cache) Name() string {
	n := "L" + strconv.Itoa(c.Level)
	switch c.Type {
	case CacheData:
		if c.Level == 1 {
			n += "d"
		}
	case CacheInstruction:
		n += "i"
	}
	return n
}

// UsableCPUs is how many CPUs this process's ranks may keep busy: the
// allowed CPUs, capped by the cgroup quota rounded up, and at least 1.
func (m *Machine) UsableCPUs() int {
	n := m.Allowed.Count()
	if n == 0 {
		n = m.CPUs.Count()
	}
	if m.Quota > 0 {
		// A quota is wall-time bandwidth: 1.5 CPUs keeps two runnable
		// threads going most of the time, so round up.
		n = min(n, int(math.Ceil(m.Quota)))
	}
	return max(n, 1)
}

// HasFeature reports whether Features contains name (cpuid's spelling, e.g.
// "AVX2").
func (m *Machine) HasFeature(name string) bool {
	return slices.Contains(m.Features, name)
}

// Cores returns every core of every package, in package then core order.
func (m *Machine) Cores() []Core {
	var out []Core
	for _, p := range m.Packages {
		out = append(out, p.Cores...)
	}
	return out
}

// Oversubscribed reports whether localRanks ranks on one node are more than
// the node's usableCPUs, so a waiting rank must not spin: it would take the
// CPU a peer needs to make the progress it waits for. usableCPUs below 1
// counts as 1.
func Oversubscribed(localRanks, usableCPUs int) bool {
	return localRanks > max(usableCPUs, 1)
}
