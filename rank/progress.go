package rank

import (
	"context"
	"time"
)

// Progress. Sockets make progress on their own goroutines: a waiting caller simply parks until
// its request completes. Shared memory makes progress only when driven, so a waiting caller
// drives it: at any moment one waiting goroutine holds the driving role (w.driving) and polls
// the rings; it spins while the node has a core to spare and otherwise sleeps on its doorbell.
// Other waiters park on their request's wake channel or on w.handoff. When the driver's own
// request completes it gives up the role and, if anyone else is waiting, passes it on through
// w.handoff, so progress never stops while a caller waits.

// wait blocks until done reports true or ctx ends. wake is signalled whenever done may have
// become true (a request's wake channel, or a group channel for WaitAny).
func (w *World) wait(ctx context.Context, done func() bool, wake <-chan struct{}) error {
	if w.poller == nil {
		for !done() {
			select {
			case <-wake:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	w.waiters.Add(1)
	defer w.waiters.Add(-1)
	for !done() {
		if w.driving.CompareAndSwap(false, true) {
			err := w.drive(ctx, done)
			w.releaseDriving()
			if err != nil {
				return err
			}
			continue
		}
		select {
		case <-wake:
		case <-w.handoff:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// releaseDriving gives up the driving role and hands it to a waiter if there is one. A waiter
// counts itself before it tries to take the role, so either it sees the role free or the
// releaser sees it waiting.
func (w *World) releaseDriving() {
	w.driving.Store(false)
	if w.waiters.Load() > 1 {
		select {
		case w.handoff <- struct{}{}:
		default:
		}
	}
}

// sleepSlice bounds one sleep so that liveness checks and ctx deadlines are noticed.
const sleepSlice = 50 * time.Millisecond

// drive polls the poller until done reports true or ctx ends.
func (w *World) drive(ctx context.Context, done func() bool) error {
	idleSince := time.Time{}
	for polls := 0; ; polls++ {
		if done() {
			return nil
		}
		if w.poller.Poll() {
			idleSince = time.Time{}
			continue
		}
		if w.spin > 0 && polls&63 != 0 {
			continue // spin: reading the clock on every empty poll would cost more than the poll
		}
		now := time.Now()
		if idleSince.IsZero() {
			idleSince = now
		}
		if w.spin > 0 && now.Sub(idleSince) < w.spin {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		d := sleepSlice
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			d = max(time.Until(dl), time.Microsecond)
		}
		w.poller.Sleep(d)
		w.poller.Check()
		idleSince = time.Time{}
	}
}

// pollOnce drives the poller once if no other goroutine is driving it (Test, Iprobe).
func (w *World) pollOnce() {
	if w.poller == nil || !w.driving.CompareAndSwap(false, true) {
		return
	}
	w.poller.Poll()
	w.releaseDriving()
}

// kick tells a sleeping driver that something completed (called after every completion).
func (w *World) kick() {
	if w.poller != nil {
		w.poller.Wake()
	}
}
