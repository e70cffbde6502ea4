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
	e, err := newEngine(defaultTable(), env())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		coll         Coll
		ranks, bytes int
		want         algorithm
	}{
		{CollBarrier, 8, 0, algoDissemination},
		{CollBcast, 8, 8, algoBinomial},
		{CollBcast, 2, 1 << 20, algoBinomial},
		{CollBcast, 8, 1 << 20, algoScatterAllgather},
		{CollAllreduce, 8, 8, algoRecursiveDoubling},
		{CollAllreduce, 6, 16 << 10, algoRabenseifner},
		{CollAllreduce, 6, 1 << 20, algoRing},
		{CollAllreduce, 8, 1 << 20, algoRabenseifner},
		{CollGather, 4, 1 << 10, algoBinomial},
		{CollGather, 4, 1 << 20, algoLinear},
		{CollAllgather, 8, 64, algoBruck},
		{CollAllgather, 8, 1 << 20, algoRing},
		{CollAlltoall, 16, 64, algoBruck},
		{CollAlltoall, 4, 64, algoLinear},
		{CollAlltoall, 4, 1 << 20, algoPairwise},
		{CollReduceScatter, 6, 1 << 10, algoRecursiveHalving},
		{CollReduceScatter, 6, 1 << 20, algoPairwise},
		{CollReduceScatter, 8, 1 << 20, algoRecursiveHalving},
		{CollScan, 8, 1 << 20, algoRecursiveDoubling},
	}
	for _, tc := range cases {
		if got := e.choose(tc.coll, tc.ranks, tc.bytes); got != tc.want {
			t.Errorf("%v on %d ranks, %d bytes: %v, want %v", tc.coll, tc.ranks, tc.bytes, got, tc.want)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	e, err := newEngine(defaultTable(), env("GORUN_ALLREDUCE_ALGO", "ring", "GORUN_BCAST_ALGO", "auto",
		"GORUN_ALLTOALL_ALGO", "bruck", "GORUN_REDUCE_SCATTER_ALGO", "pairwise", "GORUN_CHECK", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.choose(CollAllreduce, 8, 8); got != algoRing {
		t.Errorf("forced allreduce: %v", got)
	}
	if got := e.choose(CollBcast, 8, 8); got != algoBinomial {
		t.Errorf("auto bcast: %v", got)
	}
	if got := e.choose(CollAlltoall, 2, 1<<20); got != algoBruck {
		t.Errorf("forced alltoall: %v", got)
	}
	if got := e.choose(CollReduceScatter, 8, 8); got != algoPairwise {
		t.Errorf("forced reduce-scatter: %v", got)
	}
	if !e.Checking() {
		t.Errorf("GORUN_CHECK=1 did not turn checks on")
	}
	if a, ok := e.uniform(CollReduceScatter, 8); !ok || a != algoPairwise {
		t.Errorf("forced reduce-scatter is not uniform: %v %v", a, ok)
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
		_, err := newEngine(defaultTable(), env(tc.key, tc.value))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want an error naming %s", tc.key, tc.value, err, tc.want)
		}
	}
}

func TestTableValidation(t *testing.T) {
	if err := func() error { tb := defaultTable(); return tb.validate() }(); err != nil {
		t.Fatalf("default table: %v", err)
	}
	// The table is data: it survives a JSON round trip unchanged.
	b, err := json.Marshal(defaultTable())
	if err != nil {
		t.Fatal(err)
	}
	var back decisionTable
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Fatalf("JSON round trip changed the table:\n%s\n%s", b, b2)
	}
	broken := []struct {
		name  string
		edit  func(*decisionTable)
		wants string
	}{
		{"no rules", func(t *decisionTable) { t.Scan = nil }, "no rules for scan"},
		{"wrong algorithm", func(t *decisionTable) { t.Bcast = []rule{{Algo: algoRing}} }, "bcast has no algorithm"},
		{"conditional last rule", func(t *decisionTable) { t.Gather = []rule{{Algo: algoLinear, MaxBytes: 10}} }, "last rule for gather"},
	}
	for _, tc := range broken {
		tb := defaultTable()
		tc.edit(&tb)
		if _, err := newEngine(tb, env()); err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.wants)
		}
	}
}

func TestRuleConditions(t *testing.T) {
	r := rule{Algo: algoRing, MaxBytes: 100, MinRanks: 3, MaxRanks: 9, NonPow2: true}
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

// TestUniform: an algorithm is uniform for a communicator size when every rule that can
// apply to it, up to the first without a size limit, names it.
func TestUniform(t *testing.T) {
	e, err := newEngine(defaultTable(), env())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		coll  Coll
		ranks int
		want  algorithm // "" for none
	}{
		{CollGatherv, 2, algoLinear},
		{CollGatherv, 8, algoLinear},
		{CollGatherv, 9, ""}, // binomial up to 4 KiB blocks, then linear
		{CollScatterv, 8, algoLinear},
		{CollScan, 5, algoRecursiveDoubling},
		{CollAllgatherv, 4, ""},
	}
	for _, tc := range cases {
		a, ok := e.uniform(tc.coll, tc.ranks)
		if ok != (tc.want != "") || a != tc.want {
			t.Errorf("uniform(%v, %d) = %q, %v; want %q", tc.coll, tc.ranks, a, ok, tc.want)
		}
	}
}
