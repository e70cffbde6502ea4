package comm_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
	"github.com/gorun-hpc/gorun/launcher"
)

// End-to-end tests: real rank processes started through the launcher, over every transport,
// at 1, 2, 3, 4 and 8 ranks (8 ranks on a 2-core machine are oversubscribed: they must still
// finish quickly). The rank program is testdata/e2e.

func TestMain(m *testing.M) { jobtest.Main(m) }

var transports = []struct {
	name string
	env  []string
}{
	{"shm", []string{"GORUN_TRANSPORT=shm"}},
	{"tcp", []string{"GORUN_TRANSPORT=tcp"}},
	{"unix", []string{"GORUN_TRANSPORT=unix"}},
	// The other large-message paths of shared memory: single copy for every rendezvous, and
	// the /dev/shm file fallback with single copy forbidden.
	{"shm-cma", []string{"GORUN_TRANSPORT=shm", "GORUN_CMA=on"}},
	{"shm-fallback-nocma", []string{"GORUN_TRANSPORT=shm", "GORUN_SHM_FALLBACK=1", "GORUN_CMA=off"}},
}

func rankCounts(transport string) []int {
	if transport == "shm" || transport == "tcp" {
		return []int{1, 2, 3, 4, 8}
	}
	return []int{2, 3}
}

func TestPointToPoint(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports {
		for _, n := range rankCounts(tr.name) {
			t.Run(fmt.Sprintf("%s/n%d", tr.name, n), func(t *testing.T) {
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"p2p"}, Env: tr.env, Timeout: time.Minute})
				if !strings.Contains(res.Stdout, fmt.Sprintf("e2e p2p ok on %d ranks", n)) {
					t.Fatalf("no success line:\n%s", res.Stdout)
				}
			})
		}
	}
}

func TestCollectivesEndToEnd(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports[:3] {
		for _, n := range rankCounts(tr.name) {
			t.Run(fmt.Sprintf("%s/n%d", tr.name, n), func(t *testing.T) {
				jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"coll"}, Env: tr.env, Timeout: time.Minute})
			})
		}
	}
}

// TestIdleWaitSleeps: ranks kept waiting for a second, in a receive and in a barrier, sleep
// instead of burning CPU: with a core each (2 ranks), and oversubscribed (4 ranks).
func TestIdleWaitSleeps(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tc := range []struct {
		transport string
		n         int
	}{{"shm", 2}, {"tcp", 2}, {"shm", 4}} {
		t.Run(fmt.Sprintf("%s/n%d", tc.transport, tc.n), func(t *testing.T) {
			jobtest.MustSucceed(t, prog, jobtest.Job{N: tc.n, Args: []string{"idle"},
				Env: []string{"GORUN_TRANSPORT=" + tc.transport}, Timeout: time.Minute})
		})
	}
}

// TestFailingRankEndsJob: a rank that exits with status 3, or is killed by SIGKILL in the
// middle of a transfer, ends the whole job quickly, and the error names it and why.
func TestFailingRankEndsJob(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	cases := []struct {
		mode string
		want string
		code int
	}{
		{"exit3", "rank 1 (pid", 3},
		{"kill9", "killed by signal 9", 137},
	}
	for _, tr := range transports[:2] {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.mode, func(t *testing.T) {
				res := jobtest.Run(t, prog, jobtest.Job{N: 4, Args: []string{tc.mode}, Env: tr.env, Timeout: 30 * time.Second})
				var je *launcher.JobError
				if !errors.As(res.Err, &je) {
					t.Fatalf("job did not fail: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
				}
				if !strings.Contains(je.Error(), tc.want) || !strings.Contains(je.Error(), "rank 1") || je.ExitCode() != tc.code {
					t.Fatalf("error %q (exit code %d), want it to name rank 1 and %q, exit %d", je, je.ExitCode(), tc.want, tc.code)
				}
				// Never a time assertion in a test, except this bound on a hang: two seconds is
				// the promise, the slack is for the race detector and a loaded CI machine.
				if res.Took > 10*time.Second {
					t.Fatalf("the job took %v to end", res.Took)
				}
				t.Logf("%s: %v after %v", tc.mode, je, res.Took)
			})
		}
	}
}

// TestPeerLost: a rank blocked receiving from a peer that dies gets ErrPeerLost naming it.
// gorun's grace period is long so that the survivor can report before it is ended.
func TestPeerLost(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			res := jobtest.Run(t, prog, jobtest.Job{N: 2, Args: []string{"peerlost"}, Env: tr.env, Timeout: 30 * time.Second, Grace: 10 * time.Second})
			if !strings.Contains(res.Stdout, "peerlost: rank 0 got") || strings.Contains(res.Stderr, "FAIL") {
				t.Fatalf("survivor did not report ErrPeerLost:\nstdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
			}
			t.Log(strings.TrimSpace(res.Stdout))
		})
	}
}

// TestSemantics runs the point-to-point semantics suite (testdata/e2e/semantics.go) with real
// ranks over shared memory and sockets.
func TestSemantics(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports[:3] {
		for _, n := range rankCounts(tr.name) {
			t.Run(fmt.Sprintf("%s/n%d", tr.name, n), func(t *testing.T) {
				jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"sem"}, Env: tr.env, Timeout: 2 * time.Minute})
			})
		}
	}
}

// TestNodeIdentity: ranks given different GORUN_NODE values see each other as remote (TCP),
// the same value as local (shared memory), and their messages go where the path says.
func TestNodeIdentity(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	res := jobtest.MustSucceed(t, prog, jobtest.Job{N: 4, Args: []string{"nodes"}, Env: []string{"E2E_NODES=a,a,b,b"}, Timeout: time.Minute})
	for _, want := range []string{
		"rank 0 node size 2 paths self,shm,tcp,tcp",
		"rank 1 node size 2 paths shm,self,tcp,tcp",
		"rank 2 node size 2 paths tcp,tcp,self,shm",
		"rank 3 node size 2 paths tcp,tcp,shm,self",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("missing %q in:\n%s", want, res.Stdout)
		}
	}
}

// TestBlockingCallsDoNotAllocate: a blocking Send and Recv of an existing buffer allocate
// nothing, over shared memory and over TCP (the race detector allocates, so it is skipped
// there).
func TestBlockingCallsDoNotAllocate(t *testing.T) {
	if jobtest.Race {
		t.Skip("the race detector's instrumentation allocates")
	}
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			res := jobtest.MustSucceed(t, prog, jobtest.Job{N: 2, Args: []string{"allocs"}, Env: tr.env, Timeout: time.Minute})
			if !strings.Contains(res.Stdout, "allocs: particles:") {
				t.Errorf("%s: no line for structs (particles):\n%s", tr.name, res.Stdout)
			}
			for _, line := range strings.Split(res.Stdout, "\n") {
				if strings.HasPrefix(line, "allocs:") && !strings.Contains(line, " 0.000 allocations") {
					t.Errorf("%s: %s", tr.name, line)
				}
			}
			t.Log(res.Stdout)
		})
	}
}

// TestStress: 4 ranks on a 2-core machine exchange random sizes (0 B to 4 MiB) and tags in
// every direction at once; every payload is checksummed and sequence-checked by its receiver.
func TestStress(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range []struct {
		name string
		env  []string
	}{transports[0], transports[1], transports[3], transports[4]} {
		t.Run(tr.name, func(t *testing.T) {
			env := tr.env
			if jobtest.Race {
				env = append(env, "E2E_STRESS_PER_PAIR=40") // instrumented copies are slow
			}
			res := jobtest.MustSucceed(t, prog, jobtest.Job{N: 4, Args: []string{"stress"}, Env: env, Timeout: 3 * time.Minute})
			if !strings.Contains(res.Stdout, "intact and in order") {
				t.Fatalf("no verdict:\n%s", res.Stdout)
			}
		})
	}
}

// TestStructTypesEndToEnd: structs with padding (their padding bytes included) move intact by
// Send/Recv, Bcast, Gather, Scatter, Allgather and Alltoall between rank processes, at sizes
// from empty to rendezvous; a type with pointers is ErrType on every rank, also when the
// ranks first agree on their arguments (GORUN_CHECK=1), and the world works afterwards.
func TestStructTypesEndToEnd(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports[:2] {
		for _, n := range []int{1, 2, 3, 4} {
			for _, checking := range []string{"0", "1"} {
				if checking == "1" && n != 3 {
					continue // the agreement is the same at every size: one odd size shows it
				}
				t.Run(fmt.Sprintf("%s/n%d/check%s", tr.name, n, checking), func(t *testing.T) {
					env := append([]string{"GORUN_CHECK=" + checking}, tr.env...)
					res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"types"}, Env: env, Timeout: time.Minute})
					if !strings.Contains(res.Stdout, fmt.Sprintf("e2e types ok on %d ranks", n)) {
						t.Fatalf("no success line:\n%s", res.Stdout)
					}
				})
			}
		}
	}
}

// TestProcNullEndToEnd: ranks in a line shift data with ProcNull past both ends, by
// Sendrecv, Isend/Irecv and Ssend/Recv; the ends complete at once with ProcNull's status.
func TestProcNullEndToEnd(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports[:2] {
		for _, n := range []int{1, 2, 3, 4} {
			t.Run(fmt.Sprintf("%s/n%d", tr.name, n), func(t *testing.T) {
				res := jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"procnull"}, Env: tr.env, Timeout: time.Minute})
				if !strings.Contains(res.Stdout, fmt.Sprintf("e2e procnull ok on %d ranks", n)) {
					t.Fatalf("no success line:\n%s", res.Stdout)
				}
			})
		}
	}
}
