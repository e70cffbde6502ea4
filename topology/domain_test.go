package topology

import (
	"strings"
	"testing"
)

// Domains and Within on the two-socket tree (two packages, two NUMA nodes, two L3s of CPUs
// 0-3,8-11 and 4-7,12-15) and on the tree without caches (no L3 reported): a rank bound
// inside one domain is in it, one spanning two is in none, and a level with no domains puts
// nobody anywhere.
func TestDomainsWithin(t *testing.T) {
	m, err := DiscoverFrom(tree("sys-2socket"))
	if err != nil {
		t.Fatal(err)
	}
	set := func(s string) CPUSet {
		c, err := ParseCPUSet(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, l := range []Level{LevelPackage, LevelNUMA, LevelL3} {
		d := m.Domains(l)
		if len(d) != 2 || d[0].String() != "0-3,8-11" || d[1].String() != "4-7,12-15" {
			t.Errorf("%v domains %v, want [0-3,8-11 4-7,12-15]", l, d)
		}
		for _, c := range []struct {
			cpus string
			want int
		}{{"0", 0}, {"8", 0}, {"2-3", 0}, {"5,13", 1}, {"3-4", -1}, {"0-15", -1}} {
			if got := m.Within(l, set(c.cpus)); got != c.want {
				t.Errorf("%v: Within(%s) = %d, want %d", l, c.cpus, got, c.want)
			}
		}
		if got := m.Within(l, CPUSet{}); got != -1 {
			t.Errorf("%v: Within(empty) = %d, want -1", l, got)
		}
	}
	if got := Level(7).String(); got != "Level(7)" {
		t.Errorf("Level(7) is %q", got)
	}

	bare, err := discover(env{sysRoot: tree("sys-nocache"), cpu: knownFacts})
	if err != nil {
		t.Fatal(err)
	}
	if d := bare.Domains(LevelL3); d != nil {
		t.Errorf("L3 domains without an L3: %v", d)
	}
	if got := bare.Within(LevelL3, set("0")); got != -1 {
		t.Errorf("Within(L3) without an L3 = %d, want -1", got)
	}
	lines := bare.DescribeSplits()
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "l3: not reported") || !strings.HasPrefix(lines[1], "numa: 1 on this machine") {
		t.Errorf("DescribeSplits without an L3:\n%s", strings.Join(lines, "\n"))
	}
}
