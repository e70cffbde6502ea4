package launcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/internal/pmi"
	"github.com/hashicorp/go-multierror"
)

// supervisor turns the ranks' events into the job's outcome and ends the job
// on the first failure. It is used only by the goroutine running job.run.
type supervisor struct {
	j       *job
	procs   []*rankProc
	alive   []bool // alive[r]: rank r has not been reaped
	running int    // ranks not yet reaped

	// fail is the job's failure once one happened; nil while all is well.
	fail *JobError
	// ending is set once the survivors have been sent SIGTERM. Failures seen
	// after that are consequences, not causes: they go to all only, except a
	// rank killed by a signal gorun had not sent (see failRank).
	ending bool
	// killed is set once the survivors have been sent SIGKILL.
	killed bool
	all    *multierror.Error
}

func newSupervisor(j *job, procs []*rankProc) *supervisor {
	s := &supervisor{j: j, procs: procs, alive: make([]bool, len(procs)), running: len(procs)}
	for i := range s.alive {
		s.alive[i] = true
	}
	return s
}

// loop runs until every started rank has been reaped. startErr, if not nil,
// is why not every rank could be started: the job is ended at once.
func (s *supervisor) loop(ctx context.Context, startErr error) {
	var timeout, grace <-chan time.Time
	if s.j.cfg.Timeout > 0 {
		t := time.NewTimer(s.j.cfg.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	graceTimer := time.NewTimer(s.j.cfg.Grace) // armed once the job is ending
	graceTimer.Stop()
	defer graceTimer.Stop()
	done := ctx.Done()
	if startErr != nil {
		s.failJob(&JobError{Cause: CauseSetup, Err: startErr})
	}
	for s.running > 0 {
		if s.fail != nil && !s.ending {
			s.endJob()
			graceTimer.Reset(s.j.cfg.Grace)
			grace, done, timeout = graceTimer.C, nil, nil
			continue
		}
		select {
		case ev := <-s.j.events:
			s.handle(ev)
		case <-done:
			s.failJob(&JobError{Cause: CauseCanceled, Err: context.Cause(ctx)})
		case <-timeout:
			s.failJob(&JobError{Cause: CauseTimeout, Timeout: s.j.cfg.Timeout})
		case <-grace:
			s.killed = true
			s.signalAll(syscall.SIGKILL)
			if s.j.remote != nil {
				s.j.remote.closeWatches() // remote ranks kill themselves
			}
			grace = nil
		}
	}
}

// endJob records failures that already happened (events queued before the
// decision to end the job), then sends SIGTERM to every rank still running.
func (s *supervisor) endJob() {
	s.drainEvents()
	s.ending = true
	s.fail.Terminated = s.signalAll(syscall.SIGTERM)
}

// signalAll sends sig to every rank not yet reaped and returns how many it
// signalled. os.Process uses a pidfd, so a rank reaped meanwhile is never
// confused with a new process that reused its pid.
func (s *supervisor) signalAll(sig syscall.Signal) int {
	n := 0
	for _, p := range s.procs {
		if !s.alive[p.rank] {
			continue
		}
		err := p.cmd.Process.Signal(sig)
		switch {
		case err == nil:
			n++
		case !errors.Is(err, os.ErrProcessDone):
			s.all = multierror.Append(s.all, fmt.Errorf("rank %d (pid %d): send %v: %w", p.rank, p.pid, sig, err))
		}
	}
	return n
}

// failJob records the job's failure, unless it already has one.
func (s *supervisor) failJob(e *JobError) {
	if s.fail == nil {
		s.fail = e
	}
}

// failRank records a rank's own failure: a cause of the job's end if the
// job is not being ended yet, a consequence otherwise. A rank that called
// PMI abort and then exited non-zero is one failure, reported as the abort.
//
// A rank killed by a signal gorun did not send is a cause even when it is
// reaped after the job began ending, and it is reported first: ranks exit
// non-zero or abort because a peer died, not the other way round, and they do
// so within a millisecond (a PMI barrier fails as soon as the dead rank's
// socket closes), so on a loaded machine they may be reaped before the rank
// whose death they report.
func (s *supervisor) failRank(e *RankError) {
	own := e.Cause == CauseSignal && e.Signal != syscall.SIGTERM && !s.killed
	if s.ending && (!own || !isRankCause(s.fail.Cause)) {
		s.all = multierror.Append(s.all, fmt.Errorf("while the job was ending: %w", e))
		return
	}
	if s.fail == nil {
		s.fail = &JobError{Cause: e.Cause}
	}
	if !isRankCause(s.fail.Cause) {
		// The job is already failing for a job-wide reason (timeout,
		// cancel, setup).
		s.all = multierror.Append(s.all, e)
		return
	}
	for i, prev := range s.fail.Ranks {
		if prev.Rank != e.Rank {
			continue
		}
		if e.Cause == CauseAbort {
			s.fail.Ranks[i] = e
			if i == 0 {
				s.fail.Cause = CauseAbort
			}
		}
		return
	}
	if s.ending && s.fail.Terminated > 0 {
		s.fail.Terminated-- // it got SIGTERM while dying on its own
	}
	if own && !slices.ContainsFunc(s.fail.Ranks, func(r *RankError) bool { return r.Cause == CauseSignal }) {
		s.fail.Ranks = slices.Insert(s.fail.Ranks, 0, e)
		s.fail.Cause = CauseSignal
		return
	}
	s.fail.Ranks = append(s.fail.Ranks, e)
}

func isRankCause(c Cause) bool { return c == CauseExit || c == CauseSignal || c == CauseAbort }

// handle processes one event.
func (s *supervisor) handle(ev event) {
	if ev.rank >= len(s.procs) {
		// Only the PMI port can report a rank that was never started (a
		// connection claiming it after starting the ranks failed part way).
		s.all = multierror.Append(s.all, fmt.Errorf("PMI port: a connection claiming rank %d, which was not started, ended (%v): %v",
			ev.rank, ev.end.Kind, ev.err))
		return
	}
	p := s.procs[ev.rank]
	if ev.exited {
		s.alive[ev.rank] = false
		s.running--
		if e := exitFailure(p, ev.state, ev.err); e != nil {
			if ev.state == nil {
				s.all = multierror.Append(s.all, fmt.Errorf("rank %d (pid %d): wait: %w", p.rank, p.pid, ev.err))
			}
			s.failRank(e)
		}
		return
	}
	switch {
	case ev.end.Kind == pmi.EndAborted:
		s.failRank(&RankError{Rank: p.rank, Pid: p.pid, Host: p.host, Cause: CauseAbort,
			Status: ev.end.ExitCode, Message: ev.end.Message})
	case ev.err != nil && !errors.Is(ev.err, context.Canceled):
		// The rank broke the protocol. Not fatal by itself: the rank
		// sees its own PMI calls fail and exits, which decides.
		s.all = multierror.Append(s.all, fmt.Errorf("rank %d (pid %d): %w", p.rank, p.pid, ev.err))
	}
}

// exitFailure classifies how a reaped rank ended: nil for exit status 0.
func exitFailure(p *rankProc, st *os.ProcessState, waitErr error) *RankError {
	e := &RankError{Rank: p.rank, Pid: p.pid, Host: p.host, Cause: CauseExit}
	if st == nil { // Wait itself failed; the status is unknown
		e.Status = -1
		return e
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		e.Cause, e.Signal = CauseSignal, ws.Signal()
	case st.ExitCode() != 0:
		e.Status = st.ExitCode()
	default:
		return nil
	}
	return e
}

// drainEvents handles the events queued now, without waiting. After the
// loop these are the PMI servers' reports, which can arrive after their rank
// was reaped: an abort there still fails a job that had not failed (a rank
// that called abort and exited 0 before the launcher read the abort).
func (s *supervisor) drainEvents() {
	for {
		select {
		case ev := <-s.j.events:
			s.handle(ev)
		default:
			return
		}
	}
}

// result is Run's return value.
func (s *supervisor) result(outErr error, readErrs []error) error {
	for _, err := range readErrs {
		s.all = multierror.Append(s.all, err)
	}
	if s.fail == nil && outErr == nil {
		return nil
	}
	if s.fail == nil {
		s.fail = &JobError{Cause: CauseOutput, Err: outErr}
	}
	// all lists the primary failures first.
	var primary *multierror.Error
	for _, r := range s.fail.Ranks {
		primary = multierror.Append(primary, r)
	}
	if s.fail.Err != nil {
		primary = multierror.Append(primary, s.fail.Err)
	}
	if s.fail.Cause == CauseTimeout {
		primary = multierror.Append(primary, fmt.Errorf("timeout of %v exceeded", s.fail.Timeout))
	}
	if outErr != nil && s.fail.Cause != CauseOutput {
		primary = multierror.Append(primary, fmt.Errorf("forwarding output: %w", outErr))
	}
	s.fail.All = multierror.Append(primary, s.all)
	return s.fail
}
