package rank

import (
	"fmt"
	"runtime"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Closing. The program may call Close while other goroutines are in the middle of calls, or
// keep using requests afterwards; none of that may hang or touch the node segment once it is
// unmapped. Close proceeds in steps, each making the next safe:
//
//  1. closing is set and closingCh closed. From then on every call of the program fails at
//     its entry with ErrClosed, and every wait of the program (any wait but the final
//     barrier's, see closable) returns ErrClosed, whether it drives progress or is parked.
//  2. The matcher completes every posted receive and probe of the program with ErrClosed,
//     and every later one (a call that was admitted just before closing may still post).
//  3. Close waits until no goroutine is inside an entry section (users == 0). An entry
//     section is the part of a call that hands work to a transport or touches the segment
//     without waiting: starting a send, posting a receive, one poll, a cancel — and a whole
//     collective (Enter … Leave), whose algorithm writes into the arena between its waits.
//     With steps 1 and 2 done, every such section ends promptly.
//  4. The final barrier, on closeContext, which is exempt from steps 1 and 2.
//  5. Close takes the driving role and never gives it back, so no goroutine polls the
//     segment again (after the barrier only the program's waits could drive, and they return
//     at once); then it tears the transports down, sockets first (their goroutines complete
//     requests and so ring the shared-memory doorbell, which must still be mapped), and each
//     completes whatever it still holds — sends nobody matched, fetches in progress — with
//     ErrClosed.
//
// So every request ends by the time Close returns: with its result, with ErrCanceled if it
// was canceled, or with ErrClosed.

// enter admits a call on context ctx into an entry section; it fails with ErrClosed once Close
// has begun, except on closeContext (Close's own barrier). A call that was admitted must call
// leave when its section ends.
//
// Close stores closing and then loads users; enter adds to users and then loads closing. Both
// are sequentially consistent, so either enter sees closing, or Close sees the section and
// waits for it.
func (w *World) enter(ctx uint32) error {
	w.users.Add(1)
	if ctx != closeContext && w.closing.Load() {
		w.users.Add(-1)
		return ErrClosed
	}
	return nil
}

// leave ends an entry section.
func (w *World) leave() { w.users.Add(-1) }

// Enter admits a collective that works in the node arena directly: Close waits for it to
// Leave before it unmaps the segment. It fails with ErrClosed once Close has begun; every wait
// inside returns ErrClosed from then on, so the collective ends promptly.
func (w *World) Enter() error { return w.enter(0) }

// Leave ends what Enter admitted.
func (w *World) Leave() { w.leave() }

// Closed reports whether Close has begun.
func (w *World) Closed() bool { return w.closing.Load() }

// closable reports whether a wait on context ctx ends with ErrClosed once Close begins.
func closable(ctx uint32) bool { return ctx != closeContext }

// Close leaves the job: it ends the program's calls in progress (see above), waits until every
// rank has called Close (a barrier), then ends the connections in order and tells the
// launcher. It is idempotent.
func (w *World) Close() error {
	w.closeOnce.Do(func() {
		var errs error
		w.closing.Store(true)
		close(w.closingCh)
		w.kick() // a driver asleep on its doorbell sees closing
		w.m.close(ErrClosed, closeContext)
		for w.users.Load() != 0 {
			time.Sleep(50 * time.Microsecond)
		}
		if w.size > 1 {
			if err := w.barrier(closeContext); err != nil {
				errs = multierror.Append(errs, fmt.Errorf("final barrier: %w", err))
			}
		}
		w.stopDriving()
		if err := w.teardown(); err != nil {
			errs = multierror.Append(errs, err)
		}
		if w.pmi != nil {
			if err := w.pmi.Finalize(); err != nil {
				errs = multierror.Append(errs, fmt.Errorf("pmi finalize: %w", err))
			}
		}
		if w.rendezvous != nil {
			w.rendezvous.close(rendezvousLinger)
		}
		w.closeErr = errs
		if w.mem == nil { // an in-process world never held the process's one Init
			initialized.Store(false)
		}
	})
	return w.closeErr
}

// stopDriving takes the driving role for good. Whoever holds it now is a wait of the program,
// which sees closing and gives it up within one poll or one sleep slice.
func (w *World) stopDriving() {
	if w.poller == nil {
		return
	}
	for !w.driving.CompareAndSwap(false, true) {
		w.kick()
		runtime.Gosched()
		time.Sleep(50 * time.Microsecond)
	}
}

// teardown closes every transport: sockets first, then shared memory (or an in-process
// world's port).
func (w *World) teardown() error {
	var errs error
	for _, n := range w.nets {
		if err := n.Close(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	w.nets = nil
	if w.shm != nil {
		if err := w.shm.Close(); err != nil {
			errs = multierror.Append(errs, err)
		}
		w.shm = nil
	}
	if w.mem != nil {
		if err := w.mem.Close(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs
}
