package topology

import (
	"slices"
	"strconv"
	"testing"
)

// twoSocket is the testdata machine: 2 packages × 4 cores × 2 threads, CPU i
// and i+8 are SMT siblings, package 0 (NUMA node 0, one L3) holds 0-3,8-11.
func twoSocket(t *testing.T) *Machine {
	t.Helper()
	return mustDiscover(t, env{sysRoot: tree("sys-2socket"), cpu: knownFacts})
}

func withAllowed(t *testing.T, m *Machine, allowed string) *Machine {
	t.Helper()
	s, err := ParseCPUSet(allowed)
	if err != nil {
		t.Fatal(err)
	}
	c := *m
	c.Allowed = s
	return &c
}

func TestPlace(t *testing.T) {
	base := twoSocket(t)
	quota2 := *base
	quota2.Quota = 2
	noL3 := mustDiscover(t, env{sysRoot: tree("sys-nocache"), cpu: unknownFacts})

	repeat := func(s string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	tests := []struct {
		name  string
		m     *Machine
		n     int
		bind  BindTo
		mapBy MapBy
		cpus  []string
		procs []int // GOMAXPROCS per rank; one value means every rank
	}{
		{
			name: "8 ranks, map-by core, bind core: packed", m: base, n: 8, bind: BindCore, mapBy: MapCore,
			cpus:  []string{"0,8", "1,9", "2,10", "3,11", "4,12", "5,13", "6,14", "7,15"},
			procs: []int{2},
		},
		{
			name: "8 ranks, map-by l3, bind core: alternate sockets", m: base, n: 8, bind: BindCore, mapBy: MapL3,
			cpus:  []string{"0,8", "4,12", "1,9", "5,13", "2,10", "6,14", "3,11", "7,15"},
			procs: []int{2},
		},
		{
			name: "8 ranks, map-by l3, bind l3", m: base, n: 8, bind: BindL3, mapBy: MapL3,
			cpus:  []string{"0-3,8-11", "4-7,12-15", "0-3,8-11", "4-7,12-15", "0-3,8-11", "4-7,12-15", "0-3,8-11", "4-7,12-15"},
			procs: []int{2},
		},
		{
			name: "8 ranks, map-by core, bind numa: first 4 on node 0", m: base, n: 8, bind: BindNUMA, mapBy: MapCore,
			cpus:  []string{"0-3,8-11", "0-3,8-11", "0-3,8-11", "0-3,8-11", "4-7,12-15", "4-7,12-15", "4-7,12-15", "4-7,12-15"},
			procs: []int{2},
		},
		{
			name: "8 ranks, defaults: bind core", m: base, n: 8, bind: BindDefault, mapBy: MapCore,
			cpus:  []string{"0,8", "1,9", "2,10", "3,11", "4,12", "5,13", "6,14", "7,15"},
			procs: []int{2},
		},
		{
			name: "2 ranks, map-by numa, bind numa", m: base, n: 2, bind: BindNUMA, mapBy: MapNUMA,
			cpus: []string{"0-3,8-11", "4-7,12-15"}, procs: []int{8},
		},
		{
			name: "4 ranks, bind none share everything", m: base, n: 4, bind: BindNone, mapBy: MapCore,
			cpus: repeat("0-15", 4), procs: []int{4},
		},
		{
			name: "20 ranks on 16 CPUs, defaults: oversubscribed, bind none", m: base, n: 20, bind: BindDefault, mapBy: MapCore,
			cpus: repeat("0-15", 20), procs: []int{1},
		},
		{
			name: "20 ranks, bind core: wraps around the 8 cores", m: base, n: 20, bind: BindCore, mapBy: MapCore,
			cpus: []string{"0,8", "1,9", "2,10", "3,11", "4,12", "5,13", "6,14", "7,15",
				"0,8", "1,9", "2,10", "3,11", "4,12", "5,13", "6,14", "7,15", "0,8", "1,9", "2,10", "3,11"},
			procs: []int{1},
		},
		{
			name: "12 ranks fit 16 CPUs but not 8 cores: bind core doubles up", m: base, n: 12, bind: BindDefault, mapBy: MapL3,
			cpus: []string{"0,8", "4,12", "1,9", "5,13", "2,10", "6,14", "3,11", "7,15",
				"0,8", "4,12", "1,9", "5,13"},
			procs: []int{1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1},
		},
		{
			name: "allowed set restricts the cores", m: withAllowed(t, base, "2-5,10-13"), n: 4, bind: BindCore, mapBy: MapCore,
			cpus: []string{"2,10", "3,11", "4,12", "5,13"}, procs: []int{2},
		},
		{
			name: "allowed without SMT siblings", m: withAllowed(t, base, "0-7"), n: 8, bind: BindDefault, mapBy: MapCore,
			cpus: []string{"0", "1", "2", "3", "4", "5", "6", "7"}, procs: []int{1},
		},
		{
			name: "allowed without SMT siblings, bind l3", m: withAllowed(t, base, "0-7"), n: 2, bind: BindL3, mapBy: MapL3,
			cpus: []string{"0-3", "4-7"}, procs: []int{4},
		},
		{
			name: "uneven L3 domains: the full one is skipped", m: withAllowed(t, base, "0-4,8-11"), n: 6, bind: BindCore, mapBy: MapL3,
			cpus:  []string{"0,8", "4", "1,9", "2,10", "3,11", "4"},
			procs: []int{2, 1, 2, 2, 2, 1},
		},
		{
			name: "quota 2 CPUs: 4 ranks oversubscribe", m: &quota2, n: 4, bind: BindDefault, mapBy: MapCore,
			cpus: repeat("0-15", 4), procs: []int{1},
		},
		{
			name: "quota caps GOMAXPROCS of a wide binding", m: &quota2, n: 1, bind: BindNUMA, mapBy: MapCore,
			cpus: []string{"0-3,8-11"}, procs: []int{2},
		},
		{
			name: "no L3 information: the package is the domain", m: noL3, n: 3, bind: BindL3, mapBy: MapL3,
			cpus: repeat("0-3", 3), procs: []int{1},
		},
		{
			name: "one rank", m: noL3, n: 1, bind: BindDefault, mapBy: MapNUMA,
			cpus: []string{"0,2"}, procs: []int{2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Place(tc.m, tc.n, tc.bind, tc.mapBy)
			if err != nil {
				t.Fatal(err)
			}
			var cpus []string
			var procs []int
			for r, p := range got {
				if p.Rank != r {
					t.Errorf("placement %d has Rank %d", r, p.Rank)
				}
				if !p.CPUs.IsSubsetOf(tc.m.Allowed) {
					t.Errorf("rank %d on %q, outside Allowed %q", r, p.CPUs, tc.m.Allowed)
				}
				cpus = append(cpus, p.CPUs.String())
				procs = append(procs, p.GOMAXPROCS)
			}
			if !slices.Equal(cpus, tc.cpus) {
				t.Errorf("CPUs:\n got %q\nwant %q", cpus, tc.cpus)
			}
			want := tc.procs
			if len(want) == 1 {
				want = slices.Repeat(want, tc.n)
			}
			if !slices.Equal(procs, want) {
				t.Errorf("GOMAXPROCS = %v, want %v", procs, want)
			}
		})
	}
}

func TestPlaceErrors(t *testing.T) {
	m := twoSocket(t)
	tests := []struct {
		name  string
		m     *Machine
		n     int
		bind  BindTo
		mapBy MapBy
	}{
		{"nil machine", nil, 1, BindCore, MapCore},
		{"no ranks", m, 0, BindCore, MapCore},
		{"negative ranks", m, -3, BindCore, MapCore},
		{"unknown bind", m, 1, BindTo(42), MapCore},
		{"unknown map", m, 1, BindCore, MapBy(-1)},
		{"no CPUs", &Machine{}, 1, BindCore, MapCore},
	}
	for _, tc := range tests {
		if _, err := Place(tc.m, tc.n, tc.bind, tc.mapBy); err == nil {
			t.Errorf("%s: Place succeeded", tc.name)
		}
	}
}

// A Machine built by hand, without packages, still places: every allowed CPU
// counts as a core.
func TestPlaceBareMachine(t *testing.T) {
	cpus, _ := ParseCPUSet("0-2")
	got, err := Place(&Machine{CPUs: cpus}, 4, BindDefault, MapL3)
	if err != nil {
		t.Fatal(err)
	}
	// 4 ranks > 3 CPUs: oversubscribed, so unbound.
	for _, p := range got {
		if p.CPUs.String() != "0-2" || p.GOMAXPROCS != 1 {
			t.Errorf("rank %d: %q GOMAXPROCS %d", p.Rank, p.CPUs, p.GOMAXPROCS)
		}
	}
	got, err = Place(&Machine{CPUs: cpus}, 3, BindCore, MapNUMA)
	if err != nil {
		t.Fatal(err)
	}
	for r, p := range got {
		if p.CPUs.String() != strconv.Itoa(r) {
			t.Errorf("rank %d on %q", r, p.CPUs)
		}
	}
}

func TestParseBindMap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want BindTo
		ok   bool
	}{
		{"", BindDefault, true}, {"default", BindDefault, true}, {"none", BindNone, true},
		{"core", BindCore, true}, {"l3", BindL3, true}, {"numa", BindNUMA, true},
		{"socket", 0, false}, {"Core", 0, false},
	} {
		got, err := ParseBindTo(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBindTo(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok && tc.in != "" && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	for _, tc := range []struct {
		in   string
		want MapBy
		ok   bool
	}{
		{"", MapCore, true}, {"core", MapCore, true}, {"l3", MapL3, true}, {"numa", MapNUMA, true},
		{"slot", 0, false}, {"default", 0, false},
	} {
		got, err := ParseMapBy(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMapBy(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok && tc.in != "" && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	if BindTo(9).String() != "BindTo(9)" || MapBy(9).String() != "MapBy(9)" {
		t.Error("String of an unknown value")
	}
}

func TestOversubscribed(t *testing.T) {
	for _, tc := range []struct {
		ranks, cpus int
		want        bool
	}{
		{1, 1, false}, {2, 2, false}, {3, 2, true}, {20, 16, true}, {1, 0, false}, {2, 0, true}, {0, 4, false},
	} {
		if got := Oversubscribed(tc.ranks, tc.cpus); got != tc.want {
			t.Errorf("Oversubscribed(%d, %d) = %v", tc.ranks, tc.cpus, got)
		}
	}
}
