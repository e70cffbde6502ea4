package topology

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteText writes m as an indented tree in the spirit of `lstopo --of
// console`: each package, NUMA node, cache and core is printed under the
// smallest object whose CPUs contain its own, so the nesting follows the
// machine whatever it is (a NUMA node per package, several per package, or
// an L3 spanning nodes). Then the allowed set and quota when they restrict
// the machine, the features and the sources, and, if placement is non-nil,
// one line per rank:
//
//	Machine (AMD EPYC, 2 CPUs usable of 2, line 64 B)
//	  Package 0
//	    NUMANode 0 (CPUs 0-1)
//	      L2 1 MiB (CPU 0)
//	        L1d 48 KiB (CPU 0)
//	          Core 0: CPU 0
//	…
//	rank 0 -> CPUs 0 (GOMAXPROCS 1)
//
// The text is for people; tools should read WriteJSON.
func (m *Machine) WriteText(w io.Writer, placement []Placement) error {
	var b bytes.Buffer
	name := cmp.Or(m.Model, m.Vendor, "unknown CPU")
	fmt.Fprintf(&b, "Machine (%s, %d CPUs usable of %d, line %d B)\n", name, m.UsableCPUs(), m.CPUs.Count(), m.LineSize)
	printTree(&b, buildTree(m), 1)
	if !m.Allowed.Equal(m.CPUs) {
		fmt.Fprintf(&b, "Allowed: %s\n", cpuLabel(m.Allowed))
	}
	if m.Quota > 0 {
		fmt.Fprintf(&b, "CPU quota: %g CPUs\n", m.Quota)
	}
	if len(m.Features) > 0 {
		fmt.Fprintf(&b, "Features: %s\n", strings.Join(m.Features, " "))
	}
	if len(m.Sources) > 0 {
		b.WriteString("Sources:\n")
		for _, s := range m.Sources {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	for _, p := range placement {
		fmt.Fprintf(&b, "rank %d -> CPUs %s (GOMAXPROCS %d)\n", p.Rank, p.CPUs, p.GOMAXPROCS)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write topology: %w", err)
	}
	return nil
}

// WriteJSON writes m as one indented JSON object: the Machine fields under
// their json tags, "usable_cpus", and "placement" when placement is non-nil.
// CPU sets are strings in list form ("0-3,8"); lists are [] rather than null
// when empty. Field names are stable; new fields may be added.
func (m *Machine) WriteJSON(w io.Writer, placement []Placement) error {
	c := *m
	c.Features = nonNil(c.Features)
	c.Packages = nonNil(c.Packages)
	c.NUMANodes = nonNil(c.NUMANodes)
	c.Caches = nonNil(c.Caches)
	c.Sources = nonNil(c.Sources)
	v := struct {
		*Machine
		UsableCPUs int         `json:"usable_cpus"`
		Placement  []Placement `json:"placement,omitempty"`
	}{&c, m.UsableCPUs(), placement}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode topology: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write topology: %w", err)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// node is one object of the printed tree.
type node struct {
	label    string
	cpus     CPUSet
	rank     int // nesting order among objects with equal CPU sets
	children []*node
}

// buildTree inserts every object, largest CPU set first (ties: package,
// NUMA node, caches from the outermost level, core), under the deepest
// object already in the tree that contains it. Objects with no CPUs
// (memory-only NUMA nodes) hang from the root.
func buildTree(m *Machine) *node {
	var objs []*node
	for _, p := range m.Packages {
		objs = append(objs, &node{label: fmt.Sprintf("Package %d", p.ID), cpus: p.CPUs, rank: 0})
		for _, c := range p.Cores {
			objs = append(objs, &node{label: fmt.Sprintf("Core %d: %s", c.ID, cpuLabel(c.CPUs)), cpus: c.CPUs, rank: 1000})
		}
	}
	for _, n := range m.NUMANodes {
		label := fmt.Sprintf("NUMANode %d (%s)", n.ID, cpuLabel(n.CPUs))
		objs = append(objs, &node{label: label, cpus: n.CPUs, rank: 1})
	}
	for _, c := range m.Caches {
		size := "size unknown"
		if c.SizeBytes > 0 {
			size = formatSize(c.SizeBytes)
		}
		r := 100 - 10*c.Level
		if c.Type == CacheInstruction {
			r++
		}
		label := fmt.Sprintf("%s %s (%s)", c.Name(), size, cpuLabel(c.SharedCPUs))
		objs = append(objs, &node{label: label, cpus: c.SharedCPUs, rank: 10 + max(r, 0)})
	}
	slices.SortStableFunc(objs, func(a, b *node) int {
		return cmp.Or(cmp.Compare(b.cpus.Count(), a.cpus.Count()), cmp.Compare(a.rank, b.rank),
			cmp.Compare(a.cpus.First(), b.cpus.First()))
	})
	root := &node{cpus: m.CPUs}
	for _, o := range objs {
		parent := root
		for !o.cpus.IsEmpty() {
			i := slices.IndexFunc(parent.children, func(c *node) bool { return o.cpus.IsSubsetOf(c.cpus) })
			if i < 0 {
				break
			}
			parent = parent.children[i]
		}
		parent.children = append(parent.children, o)
	}
	sortTree(root)
	return root
}

// sortTree orders siblings by their lowest CPU, so the output reads in CPU
// order; insertion order was by size.
func sortTree(n *node) {
	slices.SortStableFunc(n.children, func(a, b *node) int {
		return cmp.Compare(a.cpus.First(), b.cpus.First())
	})
	for _, c := range n.children {
		sortTree(c)
	}
}

func printTree(b *bytes.Buffer, n *node, depth int) {
	for _, c := range n.children {
		fmt.Fprintf(b, "%s%s\n", strings.Repeat("  ", depth), c.label)
		printTree(b, c, depth+1)
	}
}

// cpuLabel is "CPU 3" for one CPU, "CPUs 0-3,8" for several, "no CPUs".
func cpuLabel(s CPUSet) string {
	switch s.Count() {
	case 0:
		return "no CPUs"
	case 1:
		return "CPU " + s.String()
	}
	return "CPUs " + s.String()
}

// formatSize prints bytes in the largest binary unit that divides them
// exactly, as lstopo does: "48 KiB", "1 MiB", "1536 KiB".
func formatSize(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}
