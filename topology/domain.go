package topology

import "fmt"

// Level is a piece of hardware that ranks of one node can share, from the widest down: a
// package (socket), a NUMA node, an L3 cache. comm's SplitType groups ranks by it.
type Level int

const (
	LevelPackage Level = iota
	LevelNUMA
	LevelL3
)

var levelNames = [...]string{LevelPackage: "socket", LevelNUMA: "numa", LevelL3: "l3"}

// String is the level's short name: "socket", "numa" or "l3".
func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return levelNames[l]
}

// Domains lists the instances of l on m as CPU sets, in m's order (packages and NUMA nodes by
// ID, caches by lowest CPU). It is nil for a level m does not report: no L3 cache. NUMA
// nodes without CPUs (memory only) are left out: no rank runs on them.
func (m *Machine) Domains(l Level) []CPUSet {
	var out []CPUSet
	switch l {
	case LevelPackage:
		for _, p := range m.Packages {
			out = append(out, p.CPUs)
		}
	case LevelNUMA:
		for _, n := range m.NUMANodes {
			if !n.CPUs.IsEmpty() {
				out = append(out, n.CPUs)
			}
		}
	case LevelL3:
		for _, c := range m.Caches {
			if c.Level == 3 && c.Type != CacheInstruction {
				out = append(out, c.SharedCPUs)
			}
		}
	}
	return out
}

// Within returns the index in m.Domains(l) of the domain that holds every CPU of cpus, or -1
// when none does: cpus span several domains (a rank not bound inside one), cpus is empty, or
// m reports no such domain.
func (m *Machine) Within(l Level, cpus CPUSet) int {
	if cpus.IsEmpty() {
		return -1
	}
	for i, d := range m.Domains(l) {
		if cpus.IsSubsetOf(d) {
			return i
		}
	}
	return -1
}

// DescribeSplits writes, one line per level, what a communicator split by that level holds on
// m for ranks bound inside one instance: how many instances there are, or that the level is
// not reported and the split falls back to the whole node. gorun --explain prints it.
func (m *Machine) DescribeSplits() []string {
	var lines []string
	for l := range Level(len(levelNames)) {
		switch d := m.Domains(l); len(d) {
		case 0:
			lines = append(lines, fmt.Sprintf("%s: not reported on this machine; the split falls back to the node", l))
		default:
			lines = append(lines, fmt.Sprintf("%s: %d on this machine (%v); a rank not bound inside one falls back to the node", l, len(d), d))
		}
	}
	return lines
}
