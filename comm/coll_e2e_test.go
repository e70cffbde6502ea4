package comm_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
)

// End-to-end tests of the collectives: real rank processes started through the launcher, the
// program in testdata/coll. Each setting forces a different algorithm for every collective
// that has a choice, so that between them every algorithm runs over the real runtime at 1, 2,
// 3, 4 and 8 ranks (8 on a 2-core machine: oversubscribed).

var collSettings = []struct {
	name string
	env  []string
}{
	{"table", nil},
	{"forced-a", []string{"GORUN_ALLREDUCE_ALGO=recursive_doubling", "GORUN_BCAST_ALGO=scatter_allgather",
		"GORUN_ALLGATHER_ALGO=bruck", "GORUN_ALLTOALL_ALGO=pairwise", "GORUN_GATHER_ALGO=linear",
		"GORUN_SCATTER_ALGO=linear", "GORUN_REDUCE_SCATTER_ALGO=pairwise"}},
	{"forced-b", []string{"GORUN_ALLREDUCE_ALGO=rabenseifner", "GORUN_BCAST_ALGO=binomial",
		"GORUN_ALLGATHER_ALGO=ring", "GORUN_ALLTOALL_ALGO=bruck", "GORUN_GATHER_ALGO=binomial",
		"GORUN_SCATTER_ALGO=binomial", "GORUN_REDUCE_SCATTER_ALGO=recursive_halving"}},
	// Ring allreduce, all-in-flight alltoall, and the argument check on every call.
	{"forced-c", []string{"GORUN_ALLREDUCE_ALGO=ring", "GORUN_ALLTOALL_ALGO=linear", "GORUN_CHECK=1"}},
	// The table over TCP, whose large messages take another path.
	{"table-tcp", []string{"GORUN_TRANSPORT=tcp"}},
	// Several "nodes" on this machine: the hierarchical algorithms (shared memory within a
	// node, the leaders over TCP), with nodes in block order and interleaved.
	{"nodes-block", []string{"E2E_NODES=a,a,b,b,b,c,c,c"}},
	{"nodes-cyclic", []string{"E2E_NODES=a,b"}},
}

func TestCollectiveMatrixEndToEnd(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/coll")
	for _, s := range collSettings {
		for _, n := range []int{1, 2, 3, 4, 8} {
			if (s.name == "table-tcp" || strings.HasPrefix(s.name, "nodes")) && (n == 1 || n == 8) {
				continue
			}
			t.Run(fmt.Sprintf("%s/n%d", s.name, n), func(t *testing.T) {
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"matrix"}, Env: s.env, Timeout: 2 * time.Minute})
				if !strings.Contains(res.Stdout, fmt.Sprintf("coll matrix ok on %d ranks", n)) {
					t.Fatalf("no success line:\n%s", res.Stdout)
				}
				t.Logf("%v", res.Took.Round(time.Millisecond))
			})
		}
	}
}

// TestCollectiveCheckMode: with GORUN_CHECK=1, ranks that pass different counts, roots or ops
// all get an error (ErrMismatch, or ErrBuffer on the rank whose buffer is wrong) instead of a
// hang, and the communicator works afterwards.
func TestCollectiveCheckMode(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/coll")
	for _, n := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"mismatch"}, Env: []string{"GORUN_CHECK=1"}, Timeout: 30 * time.Second})
			if !strings.Contains(res.Stdout, "every rank got an error") {
				t.Fatalf("no success line:\n%s", res.Stdout)
			}
		})
	}
}

// TestUnknownAlgorithmIsAnError: a misspelt override fails every collective, naming the
// variable, on every rank.
func TestUnknownAlgorithmIsAnError(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/coll")
	res := jobtest.MustSucceed(t, prog, jobtest.Job{N: 3, Args: []string{"badalgo"}, Env: []string{"GORUN_ALLREDUCE_ALGO=bogus"}, Timeout: 30 * time.Second})
	if !strings.Contains(res.Stdout, "GORUN_ALLREDUCE_ALGO") {
		t.Fatalf("no report of the bad setting:\n%s", res.Stdout)
	}
	t.Log(strings.TrimSpace(res.Stdout))
}

// TestUserOpsEndToEnd: ReduceFunc, AllreduceFunc and ScanFunc with a non-commutative
// operation, and MaxLoc and MinLoc with ties (testdata/e2e/userop.go), with real rank
// processes over shared memory (the world's node arena) and TCP (point to point), the table's
// choices and each allreduce algorithm forced, and across "nodes" (where the hierarchical
// path, which combines node by node, must not be taken).
func TestUserOpsEndToEnd(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	type setting struct {
		name string
		env  []string
		ns   []int
	}
	settings := []setting{
		{"shm", []string{"GORUN_TRANSPORT=shm"}, []int{2, 3, 4}},
		{"tcp", []string{"GORUN_TRANSPORT=tcp"}, []int{2, 3, 4}},
		{"shm-recursive-doubling", []string{"GORUN_TRANSPORT=shm", "GORUN_ALLREDUCE_ALGO=recursive_doubling"}, []int{3}},
		{"shm-rabenseifner", []string{"GORUN_TRANSPORT=shm", "GORUN_ALLREDUCE_ALGO=rabenseifner"}, []int{3}},
		{"tcp-ring", []string{"GORUN_TRANSPORT=tcp", "GORUN_ALLREDUCE_ALGO=ring", "GORUN_CHECK=1"}, []int{3}},
		{"nodes-block", []string{"E2E_NODES=a,a,b,b"}, []int{4}},
		{"nodes-cyclic", []string{"E2E_NODES=a,b"}, []int{3}},
	}
	for _, s := range settings {
		for _, n := range s.ns {
			t.Run(fmt.Sprintf("%s/n%d", s.name, n), func(t *testing.T) {
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"userop"}, Env: s.env, Timeout: 2 * time.Minute})
				if !strings.Contains(res.Stdout, fmt.Sprintf("e2e userop ok on %d ranks", n)) {
					t.Fatalf("no success line:\n%s", res.Stdout)
				}
			})
		}
	}
}

// TestCollectivesVEndToEnd: Gatherv, Scatterv, Allgatherv, Alltoallv, ReduceScatter and
// Exscan (testdata/coll/collv.go) with real rank processes at 2, 3 and 4 ranks over shared
// memory and TCP, with the table's choices and with the other algorithm of each forced.
func TestCollectivesVEndToEnd(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/coll")
	forced := []string{"GORUN_GATHERV_ALGO=linear", "GORUN_SCATTERV_ALGO=binomial",
		"GORUN_ALLGATHERV_ALGO=ring", "GORUN_ALLTOALLV_ALGO=pairwise", "GORUN_REDUCE_SCATTERV_ALGO=pairwise"}
	for _, s := range []struct {
		name string
		env  []string
	}{
		{"shm", []string{"GORUN_TRANSPORT=shm"}},
		{"tcp", []string{"GORUN_TRANSPORT=tcp"}},
		{"shm-forced", append([]string{"GORUN_TRANSPORT=shm", "GORUN_CHECK=1"}, forced...)},
		{"tcp-forced", append([]string{"GORUN_TRANSPORT=tcp"}, forced...)},
	} {
		for _, n := range []int{2, 3, 4} {
			t.Run(fmt.Sprintf("%s/n%d", s.name, n), func(t *testing.T) {
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"collv"}, Env: s.env, Timeout: 2 * time.Minute})
				if !strings.Contains(res.Stdout, fmt.Sprintf("coll collv ok on %d ranks", n)) {
					t.Fatalf("no success line:\n%s", res.Stdout)
				}
			})
		}
	}
}

// TestCollectivesVCheckMode: with GORUN_CHECK=1, irregular calls whose counts disagree
// between ranks (a sender against the root, counts vectors, the two ends of an Alltoallv
// block) get ErrMismatch on every rank instead of a hang or truncated data.
func TestCollectivesVCheckMode(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/coll")
	for _, n := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"collvmismatch"}, Env: []string{"GORUN_CHECK=1"}, Timeout: 30 * time.Second})
			if !strings.Contains(res.Stdout, "every rank got ErrMismatch") {
				t.Fatalf("no success line:\n%s", res.Stdout)
			}
		})
	}
}

// TestDerivedCollectivesEndToEnd: the collectives on derived communicators, which run in
// shared memory of their own (testdata/coll/derived.go): one node, several (block and
// interleaved), and TCP, where they have none.
func TestDerivedCollectivesEndToEnd(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/coll")
	for _, c := range []struct {
		name  string
		env   []string
		ranks []int
	}{
		{"shm", []string{"GORUN_TRANSPORT=shm"}, []int{1, 2, 3, 4, 8}},
		{"tcp", []string{"GORUN_TRANSPORT=tcp"}, []int{3}},
		{"nodes-block", []string{"E2E_NODES=a,a,b,b,b,c,c,c"}, []int{8}},
		{"nodes-cyclic", []string{"E2E_NODES=a,b"}, []int{5}},
	} {
		for _, n := range c.ranks {
			t.Run(fmt.Sprintf("%s/n%d", c.name, n), func(t *testing.T) {
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"derived"}, Env: c.env, Timeout: 2 * time.Minute})
				if !strings.Contains(res.Stdout, fmt.Sprintf("coll derived ok on %d ranks", n)) {
					t.Fatalf("no success line:\n%s", res.Stdout)
				}
			})
		}
	}
}
