package topology

import (
	"errors"
	"fmt"
)

// BindTo says what CPU set each rank is bound to (like Open MPI's --bind-to).
type BindTo int

const (
	// BindDefault resolves to BindCore when the ranks fit the usable CPUs
	// and to BindNone when they do not (see DefaultBind).
	BindDefault BindTo = iota
	// BindNone leaves every rank on all the allowed CPUs.
	BindNone
	// BindCore binds each rank to one core: all of that core's hardware
	// threads that the process may use.
	BindCore
	// BindL3 binds each rank to every allowed CPU of the L3 cache domain its
	// core belongs to.
	BindL3
	// BindNUMA binds each rank to every allowed CPU of its core's NUMA node.
	BindNUMA
)

var bindNames = [...]string{BindDefault: "default", BindNone: "none", BindCore: "core", BindL3: "l3", BindNUMA: "numa"}

// String returns the name ParseBindTo accepts.
func (b BindTo) String() string {
	if b < 0 || int(b) >= len(bindNames) {
		return fmt.Sprintf("BindTo(%d)", int(b))
	}
	return bindNames[b]
}

// ParseBindTo parses "core", "l3", "numa", "none", or "" / "default".
func ParseBindTo(s string) (BindTo, error) {
	if s == "" {
		return BindDefault, nil
	}
	for b, name := range bindNames {
		if s == name {
			return BindTo(b), nil
		}
	}
	return 0, fmt.Errorf("bind-to %q: want core, l3, numa or none", s)
}

// MapBy says how ranks are laid out over the cores (like Open MPI's --map-by).
type MapBy int

const (
	// MapCore packs ranks onto consecutive cores in package and core order.
	MapCore MapBy = iota
	// MapL3 deals ranks round-robin across the L3 cache domains.
	MapL3
	// MapNUMA deals ranks round-robin across the NUMA nodes.
	MapNUMA
)

var mapNames = [...]string{MapCore: "core", MapL3: "l3", MapNUMA: "numa"}

// String returns the name ParseMapBy accepts.
func (m MapBy) String() string {
	if m < 0 || int(m) >= len(mapNames) {
		return fmt.Sprintf("MapBy(%d)", int(m))
	}
	return mapNames[m]
}

// ParseMapBy parses "core", "l3" or "numa"; "" is MapCore.
func ParseMapBy(s string) (MapBy, error) {
	if s == "" {
		return MapCore, nil
	}
	for m, name := range mapNames {
		if s == name {
			return MapBy(m), nil
		}
	}
	return 0, fmt.Errorf("map-by %q: want core, l3 or numa", s)
}

// Placement is where one rank runs.
type Placement struct {
	Rank int `json:"rank"`
	// CPUs is the rank's CPU set, to be applied before the rank starts. With
	// BindNone it is every allowed CPU.
	CPUs CPUSet `json:"cpus"`
	// GOMAXPROCS is the rank's share of its CPUs: the CPUs in its set
	// (capped by the machine's usable CPUs) divided by the number of ranks
	// placed on exactly that set, at least 1.
	GOMAXPROCS int `json:"gomaxprocs"`
}

// DefaultBind is what BindDefault means for n ranks on m: BindCore when n
// fits m.UsableCPUs(), BindNone when the ranks oversubscribe the machine, so
// that the scheduler can move them to whatever CPU is idle.
func DefaultBind(m *Machine, n int) BindTo {
	if Oversubscribed(n, m.UsableCPUs()) {
		return BindNone
	}
	return BindCore
}

// Place decides where n ranks go on m, using only CPUs in m.Allowed.
//
// mapBy chooses each rank's core: MapCore takes the cores in package and
// core order; MapL3 and MapNUMA deal ranks one per domain in turn, each
// domain handing out its cores in order and being skipped once all its cores
// have a rank. bind then chooses the set: the core, its L3 domain, its NUMA
// node, or (BindNone) every allowed CPU. Without L3 information each package
// counts as one L3 domain.
//
// More ranks than cores never fails: after every core has a rank, mapping
// starts over from the first core, so cores carry ranks evenly and the
// ranks sharing a core share its CPUs (GOMAXPROCS 1 each).
func Place(m *Machine, n int, bind BindTo, mapBy MapBy) ([]Placement, error) {
	switch {
	case m == nil:
		return nil, errors.New("place ranks: nil machine")
	case n < 1:
		return nil, fmt.Errorf("place ranks: %d ranks, want at least 1", n)
	case bind < BindDefault || bind > BindNUMA:
		return nil, fmt.Errorf("place ranks: unknown %v", bind)
	case mapBy < MapCore || mapBy > MapNUMA:
		return nil, fmt.Errorf("place ranks: unknown %v", mapBy)
	}
	allowed := m.Allowed.Intersect(m.CPUs)
	if allowed.IsEmpty() {
		allowed = m.CPUs.Union(m.Allowed)
	}
	if allowed.IsEmpty() {
		return nil, errors.New("place ranks: machine has no CPUs")
	}
	if bind == BindDefault {
		bind = DefaultBind(m, n)
	}
	cores := allowedCores(m, allowed)

	coreOf := make([]int, n) // rank → index into cores
	switch mapBy {
	case MapCore:
		for r := range coreOf {
			coreOf[r] = r % len(cores)
		}
	case MapL3, MapNUMA:
		deal(domains(m, mapBy == MapNUMA, cores, allowed), coreOf)
	}

	out := make([]Placement, n)
	sharers := map[string]int{}
	for r, set := range bindSets(m, bind, cores, coreOf, allowed) {
		out[r] = Placement{Rank: r, CPUs: set}
		sharers[set.String()]++
	}
	usable := m.UsableCPUs()
	for r := range out {
		cpus := min(out[r].CPUs.Count(), usable)
		out[r].GOMAXPROCS = max(1, cpus/sharers[out[r].CPUs.String()])
	}
	return out, nil
}

// bindSets returns each rank's CPU set given the core it was mapped to.
func bindSets(m *Machine, bind BindTo, cores []CPUSet, coreOf []int, allowed CPUSet) []CPUSet {
	var domainOf []CPUSet // core index → its L3 or NUMA domain
	if bind == BindL3 || bind == BindNUMA {
		domainOf = make([]CPUSet, len(cores))
		for _, d := range domains(m, bind == BindNUMA, cores, allowed) {
			for _, c := range d.cores {
				domainOf[c] = d.cpus
			}
		}
	}
	sets := make([]CPUSet, len(coreOf))
	for r, c := range coreOf {
		switch bind {
		case BindCore:
			sets[r] = cores[c]
		case BindL3, BindNUMA:
			sets[r] = domainOf[c]
		default: // BindNone
			sets[r] = allowed
		}
	}
	return sets
}

// allowedCores returns each core's allowed CPUs in package then core order,
// skipping cores with none. Allowed CPUs that no core lists (a hand-built or
// inconsistent Machine) become cores of their own at the end.
func allowedCores(m *Machine, allowed CPUSet) []CPUSet {
	var cores []CPUSet
	var covered CPUSet
	for _, c := range m.Cores() {
		if s := c.CPUs.Intersect(allowed); !s.IsEmpty() {
			cores = append(cores, s)
			covered = covered.Union(s)
		}
	}
	for _, cpu := range allowed.CPUs() {
		if !covered.Contains(cpu) {
			cores = append(cores, cpuRange(cpu, cpu))
		}
	}
	return cores
}

// domain is a group of cores that share an L3 or a NUMA node.
type domain struct {
	cpus  CPUSet // allowed CPUs of the domain
	cores []int  // indexes into the cores slice, in core order
}

// domains groups cores by the L3 instance (or NUMA node) holding each
// core's first CPU, ordered by each domain's first core. Cores no domain
// holds (incomplete information) share one extra domain.
func domains(m *Machine, numa bool, cores []CPUSet, allowed CPUSet) []domain {
	var sets []CPUSet
	if numa {
		for _, n := range m.NUMANodes {
			sets = append(sets, n.CPUs.Intersect(allowed))
		}
	} else {
		for _, c := range m.Caches {
			if c.Level == 3 {
				sets = append(sets, c.SharedCPUs.Intersect(allowed))
			}
		}
		if len(sets) == 0 {
			for _, p := range m.Packages {
				sets = append(sets, p.CPUs.Intersect(allowed))
			}
		}
	}
	var out []domain
	index := map[int]int{} // position in sets (or -1 for none) → position in out
	for ci, c := range cores {
		which := -1
		for i, s := range sets {
			if s.Contains(c.First()) {
				which = i
				break
			}
		}
		at, ok := index[which]
		if !ok {
			at = len(out)
			index[which] = at
			d := domain{}
			if which >= 0 {
				d.cpus = sets[which]
			}
			out = append(out, d)
		}
		out[at].cores = append(out[at].cores, ci)
		if which < 0 {
			out[at].cpus = out[at].cpus.Union(c)
		}
	}
	return out
}

// deal assigns each rank a core: one rank per domain in turn, skipping full
// domains; once every core has a rank, a new round starts.
func deal(doms []domain, coreOf []int) {
	used := make([]int, len(doms))
	next := 0
	for r := 0; r < len(coreOf); {
		dealt := false
		for i := range doms {
			d := (next + i) % len(doms)
			if used[d] < len(doms[d].cores) {
				coreOf[r] = doms[d].cores[used[d]]
				used[d]++
				next = d + 1
				dealt = true
				r++
				break
			}
		}
		if !dealt {
			clear(used)
		}
	}
}
