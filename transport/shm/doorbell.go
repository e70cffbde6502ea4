package shm

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Wake-ups in one place.
//
// A rank's doorbell is an eventfd. Its peers hold a copy of the descriptor (passed with the
// segment over SCM_RIGHTS) and ring it with write(2); the rank sleeps by reading it through
// Go's netpoller, which parks the goroutine rather than blocking the thread in a system call.
// That matters on an oversubscribed node: a thread blocked in futex(2) leaves its P "in a
// syscall", so Go's sysmon thread keeps retaking it and starting another thread to hold it,
// which measured here as three busy threads per rank, 60,000 context switches a second and an
// 8-rank allreduce of 4 bytes on 2 cores taking 0.8 ms; parked in the netpoller, the rank's
// one thread waits in epoll and sysmon sleeps.
//
// The protocol that makes a lost wake-up impossible (sequentially consistent atomics on the
// sleeping word in the rank's control block):
//
//	sleeper: sleeping = 1; re-check for work; read(doorbell) (returns at once if rung)
//	waker:   publish work; if CAS(sleeping, 1, 0): write(doorbell, 1)
//
// Either the sleeper's re-check sees the work, or the waker sees the declaration and rings;
// an eventfd keeps a ring that comes before the read, so it is never missed. A ring the
// sleeper no longer needs only causes one spurious wake.
//
// Both the read and the write are raw system calls (rawRead, rawWrite in rawsys.go): they never
// block (the descriptor is non-blocking; the netpoller does the waiting), and a system call
// made the ordinary way wakes Go's sysmon thread each time it returns if sysmon was resting,
// which on an oversubscribed node costs a context switch per message.
type doorbell struct {
	f  *os.File        // this rank's eventfd, non-blocking, registered with the netpoller
	rc syscall.RawConn // f's descriptor, for raw reads that wait through the netpoller
	fd int             // the same descriptor, to hand to peers and to ring; never f.Fd(), which would make it blocking
}

func newDoorbell() (*doorbell, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "gorun-doorbell")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &doorbell{f: f, rc: rc, fd: fd}, nil
}

// wait blocks until the doorbell is rung or timeout passes, and clears it.
func (d *doorbell) wait(timeout time.Duration) {
	d.f.SetReadDeadline(time.Now().Add(timeout))
	// An error is the deadline, or a closed doorbell: the caller re-checks either way.
	d.rc.Read(func(fd uintptr) bool {
		var buf [8]byte
		return rawRead(fd, buf[:]) != unix.EAGAIN // false: not rung yet, wait for readability
	})
}

// ringBell wakes the rank whose doorbell (a peer's descriptor, or our own) is fd.
func ringBell(fd int) {
	one := [8]byte{1}
	for {
		if errno := rawWrite(fd, one[:]); errno != unix.EINTR {
			return // EAGAIN: the counter is already non-zero, so the sleeper will wake anyway
		}
	}
}

func (d *doorbell) close() error { return d.f.Close() }
