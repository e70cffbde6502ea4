package shm

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// segment is a mapped node segment.
type segment struct {
	mem  []byte
	path string // the /dev/shm file of the fallback until it is unlinked; "" for a memfd
}

// Creating and sharing the segment. The node's first rank (the leader) creates it:
//
//   - normally with memfd_create: it never has a name in /dev/shm, so nothing is left behind
//     even after kill -9. The leader hands the descriptor to the other local ranks over an
//     abstract Unix socket (no file either) with SCM_RIGHTS, and each side checks the other's
//     credentials (SO_PEERCRED: same uid, and the pid the peer's card announced).
//   - where memfd_create is unavailable (or GORUN_SHM_FALLBACK=1): a file in /dev/shm with a
//     name no other job can guess before it exists (derived from the job id), created with
//     O_EXCL and mode 0600, whose name travels over the same socket; the leader unlinks it as
//     soon as every local rank has mapped it.
//
// Before sizing, the leader checks that the backing store has room, so that touching a page
// later can never raise SIGBUS.

// shareSocket is the abstract socket name the leader serves the segment on.
func shareSocket(jobID string, leaderPid int) string {
	h := sha256.Sum256([]byte(jobID))
	return fmt.Sprintf("@gorun-seg-%s-%d", hex.EncodeToString(h[:8]), leaderPid)
}

func fallbackPath(jobID string, leaderPid int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", jobID, leaderPid)))
	return "/dev/shm/gorun-" + hex.EncodeToString(h[:12])
}

// createSegment makes and maps a segment of size bytes.
func createSegment(size int, fallback bool, path string) (*segment, int, error) {
	if !fallback {
		fd, err := unix.MemfdCreate("gorun-node-segment", unix.MFD_CLOEXEC)
		if err == nil {
			if err := checkRoom(size, ""); err != nil {
				unix.Close(fd)
				return nil, -1, err
			}
			seg, err := sizeAndMap(fd, size, true)
			if err != nil {
				unix.Close(fd)
				return nil, -1, err
			}
			return seg, fd, nil
		}
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EINVAL) {
			return nil, -1, fmt.Errorf("memfd_create: %w", err)
		}
	}
	if err := checkRoom(size, "/dev/shm"); err != nil {
		return nil, -1, err
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, -1, fmt.Errorf("create %s: %w", path, err)
	}
	seg, err := sizeAndMap(fd, size, true)
	if err != nil {
		unix.Close(fd)
		unix.Unlink(path)
		return nil, -1, err
	}
	seg.path = path
	return seg, fd, nil
}

// sizeAndMap sets the size of a fresh segment file (create) and maps it shared.
func sizeAndMap(fd, size int, create bool) (*segment, error) {
	if create {
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			return nil, fmt.Errorf("size the segment to %d bytes: %w", size, err)
		}
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the segment (%d bytes): %w", size, err)
	}
	return &segment{mem: mem}, nil
}

// checkRoom fails with a clear message if the store behind a segment of size bytes cannot hold
// it: the file system of dir (tmpfs /dev/shm), or memory for a memfd (dir "").
func checkRoom(size int, dir string) error {
	if dir != "" {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return fmt.Errorf("statfs %s: %w", dir, err)
		}
		if free := uint64(st.Bavail) * uint64(st.Bsize); free < uint64(size) {
			return fmt.Errorf("shared memory: the node segment needs %d MiB but %s has %d MiB free (enlarge it, e.g. docker --shm-size, or use fewer local ranks or GORUN_TRANSPORT=unix)",
				size>>20, dir, free>>20)
		}
		return nil
	}
	avail, err := memAvailable()
	if err != nil {
		return nil // no /proc/meminfo: nothing to check against
	}
	if avail < uint64(size) {
		return fmt.Errorf("shared memory: the node segment needs %d MiB but only %d MiB of memory is available", size>>20, avail>>20)
	}
	return nil
}

func memAvailable() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total uint64
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && (fields[0] == "MemAvailable:" || fields[0] == "SwapFree:") {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err == nil {
				total += kb << 10
				found = found || fields[0] == "MemAvailable:"
			}
		}
	}
	if !found {
		return 0, errors.New("no MemAvailable")
	}
	return total, nil
}

// serveSegment hands the segment (fd, or the fallback path) to every other local rank. pids
// are the pids the other local ranks announced; each must connect once.
func serveSegment(name string, fd int, path string, pids []int, deadline time.Time) error {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", name, err)
	}
	defer ln.Close()
	ln.SetDeadline(deadline)
	waiting := slices.Clone(pids)
	for len(waiting) > 0 {
		c, err := ln.AcceptUnix()
		if err != nil {
			return fmt.Errorf("local ranks %v did not fetch the segment: %w", waiting, err)
		}
		pid, err := peerPid(c)
		i := slices.Index(waiting, pid)
		if err != nil || i < 0 {
			c.Close() // not one of ours, or a second connection: ignore it
			continue
		}
		waiting = slices.Delete(waiting, i, i+1)
		err = sendSegment(c, fd, path)
		c.Close()
		if err != nil {
			return fmt.Errorf("hand the segment to pid %d: %w", pid, err)
		}
	}
	return nil
}

func sendSegment(c *net.UnixConn, fd int, path string) error {
	if path != "" {
		_, err := c.Write(append([]byte{'N'}, path...))
		return err
	}
	_, _, err := c.WriteMsgUnix([]byte{'F'}, unix.UnixRights(fd), nil)
	return err
}

// peerPid returns the pid of the process at the other end of c, after checking it runs as
// this user.
func peerPid(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cerr != nil {
		return 0, cerr
	}
	if int(cred.Uid) != os.Getuid() {
		return 0, fmt.Errorf("peer runs as uid %d, not %d", cred.Uid, os.Getuid())
	}
	return int(cred.Pid), nil
}

// fetchSegment connects to the leader (pid leaderPid) and maps the segment it hands over.
func fetchSegment(name string, leaderPid int, deadline time.Time) (*segment, error) {
	var c *net.UnixConn
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		var err error
		c, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: name, Net: "unix"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reach the node's first rank (pid %d) at %s: %w", leaderPid, name, err)
		}
		time.Sleep(delay)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if pid, err := peerPid(c); err != nil || pid != leaderPid {
		return nil, fmt.Errorf("segment socket %s is served by pid %d (%v), not the node's first rank %d", name, pid, err, leaderPid)
	}
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive the segment: %w", err)
	}
	switch {
	case n == 1 && buf[0] == 'F':
		fd, err := parseRights(oob[:oobn])
		if err != nil {
			return nil, err
		}
		defer unix.Close(fd)
		return mapShared(fd)
	case n > 1 && buf[0] == 'N':
		path := string(buf[1:n])
		if !strings.HasPrefix(path, "/dev/shm/gorun-") || strings.Contains(path, "..") {
			return nil, fmt.Errorf("segment path %q", path)
		}
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		defer unix.Close(fd)
		return mapShared(fd)
	}
	return nil, fmt.Errorf("unexpected %d-byte segment message", n)
}

func parseRights(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("segment message without a descriptor (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("segment message with %d descriptors (%v)", len(fds), err)
	}
	return fds[0], nil
}

// mapShared maps a segment someone else created, after checking it is this user's.
func mapShared(fd int) (*segment, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if int(st.Uid) != os.Getuid() {
		return nil, fmt.Errorf("segment owned by uid %d", st.Uid)
	}
	if st.Size <= 0 || st.Size > 1<<40 {
		return nil, fmt.Errorf("segment of %d bytes", st.Size)
	}
	return sizeAndMap(fd, int(st.Size), false)
}

// unmap releases the mapping and, for the fallback, the file if still linked.
func (s *segment) unmap() error {
	var err error
	if s.mem != nil {
		err = unix.Munmap(s.mem)
		s.mem = nil
	}
	s.unlink()
	return err
}

func (s *segment) unlink() {
	if s.path != "" {
		unix.Unlink(s.path)
		s.path = ""
	}
}
