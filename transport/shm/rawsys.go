package shm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw system calls on buffers, the one place (with cma.go's addrOf) where this package uses
// unsafe.
//
// They are on the wake/sleep fast path: a rank sleeps by reading its doorbell (doorbell.wait),
// a peer wakes it by writing to it (ringBell), and the driver asks about its peers' pidfds
// between sleeps (Transport.Check). None of the three blocks: the eventfd is non-blocking
// (the netpoller does the waiting) and the ppoll has a zero timeout. An ordinary system call
// (unix.Read, unix.Write, unix.Ppoll) goes through the runtime's entersyscall/exitsyscall,
// which wakes Go's sysmon thread each time it returns if sysmon was resting; on an
// oversubscribed node that costs a context switch per message (see doorbell.go). A raw call
// skips that bookkeeping, which is safe only because the call never blocks.
//
// Each wrapper converts its buffer's address to a uintptr in the argument list of the
// assembly-implemented unix.RawSyscall*, the form unsafe.Pointer's rule 4 allows: the buffer
// is kept alive and in place until the call returns. unsafe.SliceData is legal on an empty
// slice; every caller passes a non-empty one anyway.

// rawRead is read(2) of fd into b, without the runtime's system call bookkeeping. The
// descriptor must be non-blocking.
func rawRead(fd uintptr, b []byte) unix.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return errno
}

// rawWrite is write(2) of b to fd, without the runtime's system call bookkeeping. The
// descriptor must be non-blocking.
func rawWrite(fd int, b []byte) unix.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return errno
}

// rawPollNow is ppoll(2) over fds with a zero timeout (it never blocks), without the runtime's
// system call bookkeeping; it returns how many descriptors have events. ppoll, not poll: arm64
// has only the former.
func rawPollNow(fds []unix.PollFd) (int, unix.Errno) {
	var zero unix.Timespec
	n, _, errno := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(unsafe.SliceData(fds))), uintptr(len(fds)),
		uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
	return int(n), errno
}
