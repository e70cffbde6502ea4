package rank

import (
	"context"
	"sync/atomic"
	"syscall"
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
// become true, provided *parked is set: a request's wake channel and parked word, or WaitAny's
// group channel (signalled whatever parked says). A closable wait (every wait of the program)
// also ends, with ErrClosed, once Close begins; what it waited for is then completed by Close.
func (w *World) wait(ctx context.Context, done func() bool, wake <-chan struct{}, parked *atomic.Uint32, closable bool) error {
	closing := w.closingCh
	if !closable {
		closing = nil
	}
	if w.poller == nil {
		parked.Store(1)
		defer parked.Store(0)
		for !done() {
			if closable && w.closing.Load() {
				return ErrClosed
			}
			select {
			case <-wake:
			case <-closing:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	w.waiters.Add(1)
	defer w.waiters.Add(-1)
	for !done() {
		if closable && w.closing.Load() {
			return ErrClosed
		}
		if w.driving.CompareAndSwap(false, true) {
			err := w.drive(ctx, done, closable) // the driver polls: nobody need signal it
			w.releaseDriving()
			if err != nil {
				return err
			}
			continue
		}
		parked.Store(1)
		if done() { // completed between the check above and the declaration
			parked.Store(0)
			return nil
		}
		select {
		case <-wake:
		case <-w.handoff:
		case <-recheck(wake):
		case <-closing:
		case <-ctx.Done():
			parked.Store(0)
			return ctx.Err()
		}
		parked.Store(0)
	}
	return nil
}

// recheck returns, for a waiter with no wake channel (its condition is made true by other
// processes, which ring the driver's doorbell, not this goroutine), a timer that makes it
// look again while another goroutine drives; for others, nil (never ready).
func recheck(wake <-chan struct{}) <-chan time.Time {
	if wake != nil {
		return nil
	}
	return time.After(100 * time.Microsecond)
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

// The waiting rank's defaults (Config.Spin, Config.Yields).
const (
	defaultSpin   = 10 * time.Millisecond
	mixedSpin     = 50 * time.Microsecond
	defaultYields = 32
)

// spinPolicy is how long a driver on this node spins and how many times it yields before it
// sleeps (drive's phases 1 and 2): what cfg sets, else spin while every local rank has a CPU
// and not at all on an oversubscribed node, where it yields instead. Called once the node is
// known (buildPeers).
func spinPolicy(cfg Config, node nodeInfo) (spin time.Duration, yields int) {
	spin, yields = cfg.Spin, cfg.Yields
	if spin == 0 {
		spin = defaultSpin
		if node.oversubscribed {
			spin = -1
		}
		if node.nodeCount > 1 && len(node.localRanks) > 1 && cfg.Transport != "tcp" && cfg.Transport != "unix" {
			// Shared-memory and socket peers: a driver that spins keeps the socket reader
			// goroutines off its CPU (Go polls the network when a P is idle, or every 10 ms),
			// so it spins briefly and then sleeps in the netpoller, which wakes for either.
			spin = min(spin, mixedSpin)
		}
	}
	if yields == 0 && node.oversubscribed {
		yields = defaultYields
	}
	return spin, yields
}

// sleepSlice bounds one sleep so that liveness checks and ctx deadlines are noticed.
const sleepSlice = 50 * time.Millisecond

// liveEvery is how many polls the driver makes between looks at the clock for what must
// happen on time whatever arrives: a dead peer noticed (the poller's Check, itself spaced by
// the clock), a deadline or cancellation of ctx. Under steady traffic from other peers, or a
// long spin, the driver would otherwise never get to either.
const liveEvery = 256

// drive polls the poller until done reports true, ctx ends, or (closable) Close begins. While
// nothing arrives it waits in three phases:
//
//  1. spin (w.spin, only when every local rank has a CPU of its own): poll without pause,
//     so a message is seen within a cache-line transfer;
//  2. yield (w.yields times, only when the node is oversubscribed): poll and give the CPU to
//     another runnable rank with sched_yield, so the peer we wait for can run; most waits in
//     a collective end here, without paying for a sleep and a wake-up;
//  3. sleep on the doorbell until a peer rings it (or a slice passes).
//
// Only progress (a poll that did something) starts the phases over: a wait that has slept
// once sleeps again, rather than spinning anew after every slice, so a rank idle in a long
// wait costs no CPU.
func (w *World) drive(ctx context.Context, done func() bool, closable bool) error {
	idleSince := time.Time{}
	yields := 0
	for polls := 0; ; polls++ {
		if done() {
			return nil
		}
		if closable && w.closing.Load() {
			return ErrClosed
		}
		if polls%liveEvery == liveEvery-1 {
			w.poller.Check()
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if w.poller.Poll() {
			idleSince, yields = time.Time{}, 0
			continue
		}
		if w.spin > 0 {
			if polls&63 != 0 {
				continue // reading the clock on every empty poll would cost more than the poll
			}
			now := time.Now()
			if idleSince.IsZero() {
				idleSince = now
			}
			if now.Sub(idleSince) < w.spin {
				continue
			}
		}
		if yields < w.yields {
			yields++
			// A raw call: it returns at once, and an ordinary one would wake Go's sysmon
			// (see transport/shm/doorbell.go).
			syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		d := sleepSlice
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			d = max(time.Until(dl), time.Microsecond)
		}
		w.poller.Sleep(d, done)
		w.poller.Check()
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
