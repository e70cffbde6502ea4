package collective

import (
	"encoding/json"
	"strings"
	"testing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaultTableChoices(t *testing.T) {
	e, err := NewEngine(DefaultTable(), env())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		coll         Coll
		ranks, bytes int
		want         Algo
	}{
		{CollBarrier, 8, 0, AlgoDissemination},
		{CollBcast, 8, 8, AlgoBinomial},
		{CollBcast, 2, 1 << 20, AlgoBinomial},
		{CollBcast, 8, 1 << 20, AlgoScatterAllgather},
		{CollAllreduce, 8, 8, AlgoRecursiveDoubling},
		{CollAllreduce, 6, 16 << 10, AlgoRabenseifner},
		{CollAllreduce, 6, 1 << 20, AlgoRing},
		{CollAllreduce, 8, 1 << 20, AlgoRabenseifner},
		{CollGather, 4, 1 << 10, AlgoBinomial},
		{CollGather, 4, 1 << 20, AlgoLinear},
		{CollAllgather, 8, 64, AlgoBruck},
		{CollAllgather, 8, 1 << 20, AlgoRing},
		{CollAlltoall, 16, 64, AlgoBruck},
		{CollAlltoall, 4, 64, AlgoLinear},
		{CollAlltoall, 4, 1 << 20, AlgoPairwise},
		{CollReduceScatter, 6, 1 << 10, AlgoRecursiveHalving},
		{CollReduceScatter, 6, 1 << 20, AlgoPairwise},
		{CollReduceScatter, 8, 1 << 20, AlgoRecursiveHalving},
		{CollScan, 8, 1 << 20, AlgoRecursiveDoubling},
	}
	for _, tc := range cases {
		if got := e.Choose(tc.coll, tc.ranks, tc.bytes); got != tc.want {
			t.Errorf("%v on %d ranks, %d bytes: %v, want %v", tc.coll, tc.ranks, tc.bytes, got, tc.want)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	e, err := NewEngine(DefaultTable(), env("GORUN_ALLREDUCE_ALGO", "ring", "GORUN_BCAST_ALGO", "auto",
		"GORUN_ALLTOALL_ALGO", "bruck", "GORUN_REDUCE_SCATTER_ALGO", "pairwise", "GORUN_CHECK", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Choose(CollAllreduce, 8, 8); got != AlgoRing {
		t.Errorf("forced allreduce: %v", got)
	}
	if got := e.Choose(CollBcast, 8, 8); got != AlgoBinomial {
		t.Errorf("auto bcast: %v", got)
	}
	if got := e.Choose(CollAlltoall, 2, 1<<20); got != AlgoBruck {
		t.Errorf("forced alltoall: %v", got)
	}
	if got := e.Choose(CollReduceScatter, 8, 8); got != AlgoPairwise {
		t.Errorf("forced reduce-scatter: %v", got)
	}
	if !e.Checking() {
		t.Errorf("GORUN_CHECK=1 did not turn checks on")
	}
	bad := []struct {
		key, value, want string
	}{
		{"GORUN_ALLREDUCE_ALGO", "bogus", "GORUN_ALLREDUCE_ALGO"},
		{"GORUN_BCAST_ALGO", "ring", "GORUN_BCAST_ALGO"}, // an algorithm, but not a broadcast
		{"GORUN_ALLGATHER_ALGO", "Ring", "GORUN_ALLGATHER_ALGO"},
		{"GORUN_CHECK", "maybe", "GORUN_CHECK"},
	}
	for _, tc := range bad {
		_, err := NewEngine(DefaultTable(), env(tc.key, tc.value))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want an error naming %s", tc.key, tc.value, err, tc.want)
		}
	}
}

func TestTableValidation(t *testing.T) {
	if err := func() error { tb := DefaultTable(); return tb.validate() }(); err != nil {
		t.Fatalf("default table: %v", err)
	}
	// The table is data: it survives a JSON round trip unchanged.
	b, err := json.Marshal(DefaultTable())
	if err != nil {
		t.Fatal(err)
	}
	var back Table
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Fatalf("JSON round trip changed the table:\n%s\n%s", b, b2)
	}
	broken := []struct {
		name  string
		edit  func(*Table)
		wants string
	}{
		{"no rules", func(t *Table) { t.Scan = nil }, "no rules for scan"},
		{"wrong algorithm", func(t *Table) { t.Bcast = []Rule{{Algo: AlgoRing}} }, "bcast has no algorithm"},
		{"conditional last rule", func(t *Table) { t.Gather = []Rule{{Algo: AlgoLinear, MaxBytes: 10}} }, "last rule for gather"},
	}
	for _, tc := range broken {
		tb := DefaultTable()
		tc.edit(&tb)
		if _, err := NewEngine(tb, env()); err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.wants)
		}
	}
}

func TestRuleConditions(t *testing.T) {
	r := Rule{Algo: AlgoRing, MaxBytes: 100, MinRanks: 3, MaxRanks: 9, NonPow2: true}
	cases := []struct {
		ranks, bytes int
		want         bool
	}{
		{6, 100, true}, {6, 101, false}, {2, 10, false}, {3, 10, true}, {8, 10, false}, {9, 10, true}, {10, 10, false},
	}
	for _, tc := range cases {
		if got := r.matches(tc.ranks, tc.bytes); got != tc.want {
			t.Errorf("%d ranks, %d bytes: %v", tc.ranks, tc.bytes, got)
		}
	}
}
