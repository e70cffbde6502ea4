package comm_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
)

// TestClosePending: requests still pending when every rank calls Close end with ErrClosed,
// testing them afterwards touches nothing that Close released, and every later call fails
// with ErrClosed (testdata/e2e/closing.go).
func TestClosePending(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports {
		for _, n := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/n%d", tr.name, n), func(t *testing.T) {
				jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"closepending"}, Env: tr.env, Timeout: time.Minute})
			})
		}
	}
}

// TestCloseRacesWithCalls: Close while eight goroutines send, receive, probe and run
// collectives; every goroutine ends with nil or ErrClosed, none hangs, no rank crashes.
func TestCloseRacesWithCalls(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports[:2] {
		for _, n := range []int{2, 3, 4} {
			t.Run(fmt.Sprintf("%s/n%d", tr.name, n), func(t *testing.T) {
				for range 3 {
					jobtest.MustSucceed(t, prog, jobtest.Job{N: n, Args: []string{"closerace"}, Env: tr.env, Timeout: time.Minute})
				}
			})
		}
	}
}

// TestPeerExitNoticedUnderTraffic: a rank blocked on a peer that exited with status 0 gets
// ErrPeerLost within two seconds although other traffic keeps its driver busy and
// GORUN_SPIN asks for an hour of spinning.
func TestPeerExitNoticedUnderTraffic(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			env := append([]string{"GORUN_SPIN=1h"}, tr.env...)
			res := jobtest.Run(t, prog, jobtest.Job{N: 3, Args: []string{"exitpeer"}, Env: env, Timeout: 30 * time.Second})
			if !strings.Contains(res.Stdout, "exitpeer: rank 0 got") || strings.Contains(res.Stderr, "FAIL") {
				t.Fatalf("rank 0 did not report ErrPeerLost:\nstdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
			}
			t.Log(strings.TrimSpace(res.Stdout))
		})
	}
}
