package shm

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The futex wrapper: the only place gorun sleeps on a word in shared memory.
//
// The words live in a MAP_SHARED mapping seen by several processes, so these are shared (not
// FUTEX_PRIVATE) futexes. The sleep protocol that makes a lost wake-up impossible is:
//
//	sleeper:  v := word.Load(); declare "sleeping"; re-check for work; futexWait(word, v, d)
//	waker:    publish work; if it finds the sleeper declared: word.Add(1); futexWake(word, 1)
//
// Either the sleeper's re-check sees the work, or the waker sees the declaration; in the
// second case the word has changed from v, so futexWait returns at once if the wake came
// before it slept. Both sides use sequentially consistent atomics (Go's), which this argument
// needs (a store then a load on each side, Dekker style).

// Futex operations (linux/futex.h); x/sys/unix has the syscall number but not these.
const (
	futexWaitOp = 0
	futexWakeOp = 1
)

// futexWait blocks while *word == val, for at most d (d <= 0: do not block). It returns on a
// wake, a timeout, a signal, or at once if *word != val. unix.Syscall6 (not RawSyscall) tells
// the Go scheduler the thread may block, so other goroutines keep running.
func futexWait(word *atomic.Uint32, val uint32, d time.Duration) {
	if d <= 0 {
		return
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWaitOp, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes up to n processes blocked in futexWait on word.
func futexWake(word *atomic.Uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWakeOp, uintptr(n), 0, 0, 0)
}
