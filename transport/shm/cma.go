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

// addrOf returns the address of b's first byte, for a peer's process_vm_readv.
//
// The one deliberate exception to "no Go pointer in shared memory" (and, with rawsys.go, the
// one use of unsafe in this package). Two kinds of address of this process's Go heap are written
// into the segment as plain u64 numbers: the payload of a single-copy send, in its RTS record
// (peer.Send), and the probe pattern, in the control block (Transport.meet). The argument:
//
//   - The memory stays where the number says, and stays allocated, while a peer may read it:
//     each is pinned with runtime.Pinner before its address is published (Send pins the
//     payload's first byte, which pins the whole allocation holding it; meet pins cmaProbe),
//     and unpinned (largeSend.finish) only once the receiver has answered: at its FIN, or
//     once the pipelined fallback its CTS asked for has streamed the payload. Until then the
//     payload belongs to the transport (transport.Endpoint.Send), so its bytes do not change
//     either. Only when this rank gives up on the peer (loss, Close) is a send unpinned
//     unanswered, and the probe at Close; a read still to come then finds whatever the
//     memory holds by then (below).
//   - No process turns the number back into a pointer. The one reader is the peer's
//     cmaRead (Fetch for an announcement, probeCMA at start), which hands it to the kernel
//     as the remote address of process_vm_readv, read in this process's address space and
//     checked by the kernel against its mappings; the garbage collector never sees it.
//   - If it is wrong (a corrupt peer, a bug), the kernel fails the read (EFAULT, ESRCH,
//     EPERM: the receiver falls back to the pipelined path, and the probe reports
//     cmaUnavailable) or copies other bytes of this process into the receiver's buffer: a
//     wrong message, never a write to either process's memory outside that buffer. A
//     receiver can read only a process it may ptrace (same user), which could read any of
//     its memory anyway.
func addrOf(b []byte) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
