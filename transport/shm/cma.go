package shm

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Single-copy transfers with process_vm_readv (cross-memory attach): the receiver reads the
// sender's buffer straight into its own. The kernel allows it only if the receiver may ptrace
// the sender (same user, and Yama's ptrace_scope permitting); containers often forbid it. So
// every rank probes at start with a real read from a local peer and publishes the outcome
// (cmaState) in its control block, and a sender offers this path only to receivers that
// succeeded. Even then a failing read falls back to the pipelined path.

const (
	cmaUnknown uint32 = iota
	cmaWorks
	cmaUnavailable
)

// allowPtraceByPeers lets other processes of this user read this one where Yama restricts
// ptrace to descendants (ptrace_scope 1); with scope 0 nothing is needed.
func allowPtraceByPeers() {
	b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		unix.Prctl(unix.PR_SET_PTRACER, unix.PR_SET_PTRACER_ANY, 0, 0, 0)
	}
}

// cmaRead copies len(dst) bytes from address addr in process pid into dst.
func cmaRead(pid int, addr uint64, dst []byte) error {
	for done := 0; done < len(dst); {
		local := []unix.Iovec{{Base: &dst[done]}}
		local[0].SetLen(len(dst) - done)
		remote := []unix.RemoteIovec{{Base: uintptr(addr) + uintptr(done), Len: len(dst) - done}}
		n, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err != nil {
			return fmt.Errorf("process_vm_readv from pid %d: %w", pid, err)
		}
		if n == 0 {
			return errors.New("process_vm_readv made no progress")
		}
		done += n
	}
	return nil
}

// cmaPattern is what every rank exposes for its peers' probe read.
var cmaPattern = [16]byte{'g', 'o', 'r', 'u', 'n', '-', 'c', 'm', 'a', '-', 'p', 'r', 'o', 'b', 'e', 0}

// addrOf returns the address of b's first byte, for a peer's process_vm_readv. The memory
// must stay put while the peer may read it: heap objects do not move in Go today, and the
// caller pins them (runtime.Pinner) to make that a promise.
func addrOf(b []byte) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
