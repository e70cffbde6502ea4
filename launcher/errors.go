package launcher

import (
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Cause says why a job or a rank failed.
type Cause int

const (
	// CauseSetup: the job could not be started (bad Config, the program
	// could not be built or executed, no sockets or pipes).
	CauseSetup Cause = iota + 1
	// CauseExit: a rank exited with a non-zero status.
	CauseExit
	// CauseSignal: a rank was killed by a signal it did not get from gorun.
	CauseSignal
	// CauseAbort: a rank called PMI abort.
	CauseAbort
	// CauseTimeout: Config.Timeout passed.
	CauseTimeout
	// CauseCanceled: Run's context was done.
	CauseCanceled
	// CauseOutput: every rank exited 0 but forwarding their output failed.
	CauseOutput
)

var causeNames = [...]string{
	CauseSetup: "setup", CauseExit: "exit", CauseSignal: "signal", CauseAbort: "abort",
	CauseTimeout: "timeout", CauseCanceled: "canceled", CauseOutput: "output",
}

func (c Cause) String() string {
	if c > 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "Cause(" + strconv.Itoa(int(c)) + ")"
}

// RankError is how one rank failed. For a rank on another host, Pid is
// its launch command's (on this machine) and Host names the host; the
// status and signal are the launch command's too (ssh exits with the
// remote command's status, and with 255 when it failed itself or the
// remote command was killed by a signal).
type RankError struct {
	Rank, Pid int
	Host      string         // the remote rank's host; "" on this machine
	Cause     Cause          // CauseExit, CauseSignal or CauseAbort
	Status    int            // CauseExit: exit status; CauseAbort: the exit code it asked for
	Signal    syscall.Signal // CauseSignal
	Message   string         // CauseAbort: the rank's message, if it sent one
}

func (e *RankError) Error() string {
	who := fmt.Sprintf("rank %d (pid %d)", e.Rank, e.Pid)
	if e.Host != "" {
		who = fmt.Sprintf("rank %d (on host %s, launch command pid %d)", e.Rank, e.Host, e.Pid)
	}
	switch e.Cause {
	case CauseExit:
		return fmt.Sprintf("%s exited with status %d", who, e.Status)
	case CauseSignal:
		return fmt.Sprintf("%s killed by signal %d (%v)", who, int(e.Signal), e.Signal)
	case CauseAbort:
		s := fmt.Sprintf("%s called PMI abort with exit code %d", who, e.Status)
		if e.Message != "" {
			s += ": " + e.Message
		}
		return s
	}
	return fmt.Sprintf("%s failed (%v)", who, e.Cause)
}

// JobError is the error Run returns when the job did not succeed.
type JobError struct {
	// Cause is why the job ended: the cause of Ranks[0] when a rank failed,
	// else CauseSetup, CauseTimeout, CauseCanceled or CauseOutput.
	Cause Cause
	// Ranks are the ranks that failed on their own, first first: the first
	// failure seen and any others that had already happened when gorun began
	// ending the job. Ranks that gorun itself terminated are not listed. A rank killed
	// by a signal gorun did not send is listed first, even when it is reaped after the job
	// began ending: the ranks it left behind fail at once and may be reaped before it.
	Ranks []*RankError
	// Timeout is Config.Timeout (CauseTimeout).
	Timeout time.Duration
	// Err is the underlying error for CauseSetup, CauseOutput and
	// CauseCanceled (context.Cause of Run's context).
	Err error
	// Terminated is how many ranks were still running when the job was
	// ended and got SIGTERM (and SIGKILL after the grace period if needed).
	Terminated int
	// All lists every failure and problem seen while the job ran, in order:
	// the rank failures, Err, and secondary ones (a rank that broke the PMI
	// protocol, a rank that failed after the job was being ended, a signal
	// that could not be sent). All.Error() is the long, multi-line report.
	All *multierror.Error
}

// Error is one line naming what failed first, for example
// "gorun: rank 2 (pid 1234) exited with status 3; job aborted".
func (e *JobError) Error() string {
	switch e.Cause {
	case CauseExit, CauseSignal, CauseAbort:
		if len(e.Ranks) == 0 {
			break
		}
		s := "gorun: " + e.Ranks[0].Error()
		if n := len(e.Ranks) - 1; n > 0 {
			s += fmt.Sprintf(" (and %d more rank(s) failed)", n)
		}
		return s + "; job aborted"
	case CauseTimeout:
		return fmt.Sprintf("gorun: job exceeded its timeout of %v; job aborted", e.Timeout)
	case CauseCanceled:
		return fmt.Sprintf("gorun: job canceled (%v); job aborted", e.Err)
	case CauseSetup:
		return fmt.Sprintf("gorun: cannot start job: %v", e.Err)
	case CauseOutput:
		return fmt.Sprintf("gorun: forwarding rank output: %v", e.Err)
	}
	return fmt.Sprintf("gorun: job failed (%v): %v", e.Cause, e.Err)
}

// Unwrap returns the rank errors and Err, so errors.As finds a *RankError
// and errors.Is finds, for example, context.DeadlineExceeded.
func (e *JobError) Unwrap() []error {
	var errs []error
	for _, r := range e.Ranks {
		errs = append(errs, r)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// ExitCode is the exit status gorun itself ends with (never 0): the failed
// rank's exit status, 128+N for a rank killed by signal N (the shell's
// convention), the code a rank passed to PMI abort (1 if that is not in
// 1..255), 124 for a timeout (as timeout(1)), and 1 otherwise.
func (e *JobError) ExitCode() int {
	var first *RankError
	if len(e.Ranks) > 0 {
		first = e.Ranks[0]
	}
	switch {
	case e.Cause == CauseTimeout:
		return 124
	case first == nil:
		return 1
	case first.Cause == CauseSignal:
		return 128 + int(first.Signal)
	case first.Status >= 1 && first.Status <= 255:
		return first.Status
	}
	return 1
}
