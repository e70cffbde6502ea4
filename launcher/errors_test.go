package launcher

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
)

func TestJobErrorMessages(t *testing.T) {
	exit3 := &RankError{Rank: 2, Pid: 1234, Cause: CauseExit, Status: 3}
	killed := &RankError{Rank: 0, Pid: 99, Cause: CauseSignal, Signal: syscall.SIGKILL}
	segv := &RankError{Rank: 1, Pid: 98, Cause: CauseSignal, Signal: syscall.SIGSEGV}
	abort0 := &RankError{Rank: 1, Pid: 5, Cause: CauseAbort, Status: 0}
	abort300 := &RankError{Rank: 1, Pid: 5, Cause: CauseAbort, Status: 300, Message: "why"}
	for _, tc := range []struct {
		name string
		err  *JobError
		want string
		code int
	}{
		{"exit", &JobError{Cause: CauseExit, Ranks: []*RankError{exit3}},
			"gorun: rank 2 (pid 1234) exited with status 3; job aborted", 3},
		{"several", &JobError{Cause: CauseExit, Ranks: []*RankError{exit3, killed}},
			"gorun: rank 2 (pid 1234) exited with status 3 (and 1 more rank(s) failed); job aborted", 3},
		{"sigkill", &JobError{Cause: CauseSignal, Ranks: []*RankError{killed}},
			"gorun: rank 0 (pid 99) killed by signal 9 (killed); job aborted", 137},
		{"sigsegv", &JobError{Cause: CauseSignal, Ranks: []*RankError{segv}},
			"gorun: rank 1 (pid 98) killed by signal 11 (segmentation fault); job aborted", 139},
		{"abort 0", &JobError{Cause: CauseAbort, Ranks: []*RankError{abort0}},
			"gorun: rank 1 (pid 5) called PMI abort with exit code 0; job aborted", 1},
		{"abort out of range", &JobError{Cause: CauseAbort, Ranks: []*RankError{abort300}},
			"gorun: rank 1 (pid 5) called PMI abort with exit code 300: why; job aborted", 1},
		{"timeout", &JobError{Cause: CauseTimeout, Timeout: 90 * time.Second},
			"gorun: job exceeded its timeout of 1m30s; job aborted", 124},
		{"canceled", &JobError{Cause: CauseCanceled, Err: context.Canceled},
			"gorun: job canceled (context canceled); job aborted", 1},
		{"setup", &JobError{Cause: CauseSetup, Err: errors.New("no program given")},
			"gorun: cannot start job: no program given", 1},
		{"output", &JobError{Cause: CauseOutput, Err: errors.New("broken pipe")},
			"gorun: forwarding rank output: broken pipe", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if got := tc.err.ExitCode(); got != tc.code {
				t.Errorf("ExitCode() = %d, want %d", got, tc.code)
			}
		})
	}
}

func TestJobErrorUnwrap(t *testing.T) {
	r := &RankError{Rank: 2, Pid: 1, Cause: CauseExit, Status: 3}
	je := &JobError{Cause: CauseExit, Ranks: []*RankError{r}, All: multierror.Append(nil, r)}
	var got *RankError
	if !errors.As(je, &got) || got != r {
		t.Error("errors.As does not find the RankError")
	}
	je = &JobError{Cause: CauseCanceled, Err: context.DeadlineExceeded}
	if !errors.Is(je, context.DeadlineExceeded) {
		t.Error("errors.Is does not find the context error")
	}
	if s := CauseAbort.String(); s != "abort" || !strings.HasPrefix(Cause(42).String(), "Cause(") {
		t.Errorf("Cause strings %q, %q", s, Cause(42))
	}
}
