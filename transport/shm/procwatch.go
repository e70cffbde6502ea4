package shm

import (
	"errors"

	"golang.org/x/sys/unix"
)

// procWatch tells whether any of a set of local processes has exited. It holds a pidfd for
// each (so that a recycled pid is never taken for the process it was), or, where the kernel
// gives none, asks kill(pid, 0). The segment handoff uses it: its blocking steps wait for
// other local ranks, and a rank that died must end the wait at once rather than at the
// start-up timeout.
type procWatch struct {
	pids []int
	fds  []int // fds[i] is pids[i]'s pidfd, or -1
}

// watchProcs starts watching pids. A pid that has already gone is reported by the first
// exited call.
func watchProcs(pids []int) *procWatch {
	w := &procWatch{pids: pids, fds: make([]int, len(pids))}
	for i, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			fd = -1
		}
		w.fds[i] = fd
	}
	return w
}

// exited returns the pid of a watched process that has exited, or 0 if all still run. It
// never blocks.
func (w *procWatch) exited() int {
	var fds []unix.PollFd
	for i, pid := range w.pids {
		if w.fds[i] >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(w.fds[i]), Events: unix.POLLIN})
		} else if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return pid
		}
	}
	if len(fds) == 0 {
		return 0
	}
	if n, err := unix.Ppoll(fds, &unix.Timespec{}, nil); err != nil || n == 0 {
		return 0
	}
	for _, fd := range fds {
		if fd.Revents != 0 {
			for i, f := range w.fds {
				if f == int(fd.Fd) {
					return w.pids[i]
				}
			}
		}
	}
	return 0
}

func (w *procWatch) close() {
	for _, fd := range w.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
