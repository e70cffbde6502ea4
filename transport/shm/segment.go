package shm

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/accept"
	"github.com/gorun-hpc/gorun/internal/shmname"
)

// segment is a mapped node segment.
type segment struct {
	mem   []byte
	memfd bool // a sealed memfd, not the fallback's unnamed /dev/shm file
}

// Creating and sharing the segment. The node's first rank (the leader) creates it:
//
//   - normally with memfd_create: it never has a name in /dev/shm, so nothing is left behind
//     even after kill -9. The leader sizes it and seals it against shrinking and growing
//     (F_SEAL_SHRINK, F_SEAL_GROW, then F_SEAL_SEAL so that the seals cannot change), and
//     every other rank checks those seals before mapping it. The leader hands the descriptor
//     to the other local ranks over an abstract Unix socket (no file either) with
//     SCM_RIGHTS, and each side checks the other's credentials (SO_PEERCRED: same uid, and
//     the pid the peer's card announced).
//   - where memfd_create is unavailable (or GORUN_SHM_FALLBACK=1): an unnamed file on the
//     tmpfs of /dev/shm, opened with O_TMPFILE and mode 0600, handed over by descriptor the
//     same way. It cannot be sealed. Where O_TMPFILE is refused, the leader creates a named
//     file with O_EXCL and unlinks it at once, before handing over the descriptor; only a
//     kill -9 between those two system calls leaves the name, which gorun removes after the
//     job (shmname.Remove). Either way nothing of the segment outlives its ranks.
//
// The socket's name and the brief file name both carry a hash of Config.Nonce, a secret of
// the job's ranks: another user sees the job id and the pids in /proc, but cannot compute the
// names to take them first (an abstract name has no permissions; O_EXCL fails on a squatted
// file).
//
// SIGBUS. A mapping raises SIGBUS when a page it touches lies beyond the end of the file, or
// cannot be allocated from a full file system. For the memfd, the seals make the first
// impossible: no process, of any user, can shrink it while it is mapped. The fallback's file
// a process of the same user can truncate through /proc/PID/fd while a rank still holds it
// open during start-up. A rank then dies of SIGBUS at its next touch of a page past the new
// end. Only the same user can do that (mode 0600), who could as well kill the ranks; after
// start-up no descriptor is left. Before sizing, the leader checks that the backing store has
// room, but that
// reserves nothing: the pages come on first touch, so if /dev/shm fills up (its size= limit)
// in the meantime, the first touch of a page raises SIGBUS; the memfd draws on memory, where
// running out means the OOM killer, or SIGBUS too under strict overcommit
// (vm.overcommit_memory=2). A page allocated once is not lost again: where
// MADV_POPULATE_WRITE works, Transport.prefault allocates at start every page a rank will use
// of a segment up to prefaultLimit, which ends the risk at start-up; a larger segment's pages
// come as they are first used.

// segmentSocket is the abstract socket name the leader of cfg's node serves the segment on.
func segmentSocket(cfg *Config) string { return socketName(cfg.JobID, cfg.Pids[0], cfg.Nonce) }

// segmentFile is the name the fallback's file has for an instant where O_TMPFILE is refused.
func segmentFile(cfg *Config) string { return shmname.File(cfg.JobID, cfg.Pids[0], cfg.Nonce) }

// socketName: "@gorun-seg-", a hash of the job id (public), a hash of the nonce (secret; none
// if empty), and the leader's pid (public). Hashing keeps any nonce within an abstract name's
// rules.
func socketName(jobID string, leaderPid int, nonce string) string {
	h := sha256.Sum256([]byte(jobID))
	secret := ""
	if nonce != "" {
		n := sha256.Sum256([]byte("gorun-shm-socket\x00" + nonce))
		secret = hex.EncodeToString(n[:12]) + "-"
	}
	return fmt.Sprintf("@gorun-seg-%s-%s%d", hex.EncodeToString(h[:8]), secret, leaderPid)
}

// memfdSeals are the seals on a memfd segment: its size can never change.
const memfdSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// createSegment makes and maps a segment of size bytes.
func createSegment(size int, fallback bool, path string) (*segment, int, error) {
	if size <= 0 || uint64(size) > maxSegmentBytes {
		return nil, -1, fmt.Errorf("shared memory: a node segment of %d bytes (at most %d GiB)", size, maxSegmentBytes>>30)
	}
	if !fallback {
		fd, err := unix.MemfdCreate("gorun-node-segment", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err == nil {
			seg, err := sizeSealAndMap(fd, size)
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
	if err := checkRoom(size, shmDir); err != nil {
		return nil, -1, err
	}
	fd, err := createUnnamed(path)
	if err != nil {
		return nil, -1, err
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, -1, fmt.Errorf("size the segment to %d bytes: %w", size, err)
	}
	seg, err := mapSegment(fd, size)
	if err != nil {
		unix.Close(fd)
		return nil, -1, err
	}
	return seg, fd, nil
}

// shmDir is the tmpfs the fallback's file lives on.
const shmDir = "/dev/shm"

// createUnnamed opens a new file on shmDir that has no name: with O_TMPFILE, or, where the
// kernel refuses it, created at path (which must be in shmDir) and unlinked at once.
func createUnnamed(path string) (int, error) {
	fd, err := unix.Open(shmDir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return -1, fmt.Errorf("open an unnamed file in %s: %w", shmDir, err)
	}
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return -1, fmt.Errorf("create %s: %w", path, err)
	}
	if err := unix.Unlink(path); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("unlink %s: %w", path, err)
	}
	return fd, nil
}

// sizeSealAndMap sizes a fresh memfd, seals its size and maps it.
func sizeSealAndMap(fd, size int) (*segment, error) {
	if err := checkRoom(size, ""); err != nil {
		return nil, err
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return nil, fmt.Errorf("size the segment to %d bytes: %w", size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, memfdSeals); err != nil {
		return nil, fmt.Errorf("seal the segment's size: %w", err)
	}
	seg, err := mapSegment(fd, size)
	if err != nil {
		return nil, err
	}
	seg.memfd = true
	return seg, nil
}

// mapSegment maps size bytes of fd shared.
func mapSegment(fd, size int) (*segment, error) {
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

// The exchange on the share socket, a SOCK_SEQPACKET socket so that every message arrives
// whole and alone with its descriptors. Each other local rank connects and sends its doorbell
// ('D', its local index as u32, and the descriptor); the leader checks the index against the
// pid the socket reports. Once the leader has every doorbell it answers each rank
// with the segment, 'F' with the memfd or 'T' with the fallback's file, then the doorbells of all
// local ranks in local-rank order, in messages of up to fdsPerMessage descriptors ('B').
const fdsPerMessage = 200 // SCM_RIGHTS carries at most 253 descriptors per message

// handoffCheck spaces the checks, while the handoff waits, that the ranks it waits for still
// run: a death ends the wait within this, not at the start-up deadline.
const handoffCheck = 20 * time.Millisecond

// waitSlice is the deadline of one blocking step of a wait that must end by deadline and
// check on the ranks it waits for every handoffCheck.
func waitSlice(deadline time.Time) time.Time {
	if next := time.Now().Add(handoffCheck); next.Before(deadline) {
		return next
	}
	return deadline
}

// sliceEnded reports whether err is the end of a wait slice before the real deadline.
func sliceEnded(err error, deadline time.Time) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline)
}

// serveSegment hands the segment (fd, a memfd if memfd) to every other local rank and
// returns every rank's doorbell. pids are the pids of the local ranks (pids[0] is this one);
// each other rank must connect once. A rank that exits before it has connected ends the
// wait with an error (and so, by closing their connections, the wait of the others).
func serveSegment(name string, fd int, memfd bool, pids []int, mine int, deadline time.Time) ([]int, error) {
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: name, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", name, err)
	}
	defer ln.Close()
	procs := watchProcs(pids[1:])
	defer procs.close()
	bells := make([]int, len(pids))
	for i := range bells {
		bells[i] = -1
	}
	bells[0] = mine
	conns := make([]*net.UnixConn, len(pids))
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for waiting := len(pids) - 1; waiting > 0; {
		ln.SetDeadline(waitSlice(deadline))
		c, err := ln.AcceptUnix()
		if sliceEnded(err, deadline) || accept.Temporary(err) {
			if pid := procs.exited(); pid != 0 {
				return nil, fmt.Errorf("local rank (pid %d) exited before it fetched the segment", pid)
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				time.Sleep(handoffCheck) // out of descriptors or memory for now
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%d local ranks did not fetch the segment: %w", waiting, err)
		}
		pid, err := peerPid(c)
		if err != nil || !slices.Contains(pids[1:], pid) {
			c.Close() // not one of ours: ignore it
			continue
		}
		c.SetDeadline(deadline)
		fds, body, err := recvMsg(c, 'D', 1)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("doorbell of pid %d: %w", pid, err)
		}
		i := -1
		if len(body) == 4 {
			i = int(binary.LittleEndian.Uint32(body))
		}
		if i <= 0 || i >= len(pids) || pids[i] != pid || conns[i] != nil {
			unix.Close(fds[0])
			c.Close() // a rank claiming another's place, or a second connection
			continue
		}
		bells[i], conns[i] = fds[0], c
		waiting--
	}
	for i, c := range conns[1:] {
		if err := sendSegment(c, fd, memfd, bells); err != nil {
			return nil, fmt.Errorf("hand the segment to pid %d: %w", pids[i+1], err)
		}
	}
	return bells, nil
}

func sendSegment(c *net.UnixConn, fd int, memfd bool, bells []int) error {
	kind := byte('T')
	if memfd {
		kind = 'F'
	}
	_, _, err := c.WriteMsgUnix([]byte{kind}, unix.UnixRights(fd), nil)
	for start := 0; err == nil && start < len(bells); start += fdsPerMessage {
		batch := bells[start:min(start+fdsPerMessage, len(bells))]
		_, _, err = c.WriteMsgUnix([]byte{'B'}, unix.UnixRights(batch...), nil)
	}
	return err
}

// recvMsg reads one message of the given kind with exactly want descriptors, and returns them
// with the message's bytes after the kind byte.
func recvMsg(c *net.UnixConn, kind byte, want int) ([]int, []byte, error) {
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4*fdsPerMessage))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, err
	}
	fds, err := parseRights(oob[:oobn])
	if err == nil && (n < 1 || buf[0] != kind || len(fds) != want) {
		err = fmt.Errorf("segment exchange: message %q with %d descriptors, want %q with %d", buf[:min(n, 1)], len(fds), kind, want)
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, err
	}
	return fds, buf[1:n], nil
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

// fetchSegment connects to the leader (pid leaderPid), gives it this rank's doorbell (this
// rank is local rank me of n), and maps the segment it hands over; it returns the doorbells of
// the n local ranks. It stops waiting as soon as the leader has exited.
func fetchSegment(name string, leaderPid, me, mine, n int, deadline time.Time) (*segment, []int, error) {
	leader := watchProcs([]int{leaderPid})
	defer leader.close()
	var c *net.UnixConn
	for delay := time.Millisecond; ; delay = min(2*delay, handoffCheck) {
		var err error
		c, err = net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: name, Net: "unixpacket"})
		if err == nil {
			break
		}
		if leader.exited() != 0 {
			return nil, nil, fmt.Errorf("the node's first rank (pid %d) exited before it handed over the segment", leaderPid)
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("reach the node's first rank (pid %d) at %s: %w", leaderPid, name, err)
		}
		time.Sleep(delay)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if pid, err := peerPid(c); err != nil || pid != leaderPid {
		return nil, nil, fmt.Errorf("segment socket %s is served by pid %d (%v), not the node's first rank %d", name, pid, err, leaderPid)
	}
	hello := binary.LittleEndian.AppendUint32([]byte{'D'}, uint32(me))
	if _, _, err := c.WriteMsgUnix(hello, unix.UnixRights(mine), nil); err != nil {
		return nil, nil, fmt.Errorf("send the doorbell: %w", err)
	}
	seg, err := receiveSegment(c)
	if err != nil {
		return nil, nil, err
	}
	var bells []int
	for len(bells) < n {
		fds, _, err := recvMsg(c, 'B', min(fdsPerMessage, n-len(bells)))
		if err != nil {
			seg.unmap()
			closeAll(bells)
			return nil, nil, fmt.Errorf("receive the doorbells: %w", err)
		}
		bells = append(bells, fds...)
	}
	return seg, bells, nil
}

// receiveSegment reads the leader's 'F' or 'T' message and maps the segment.
func receiveSegment(c *net.UnixConn) (*segment, error) {
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("receive the segment: the node's first rank ended the handoff (its error says why)")
	}
	if err != nil {
		return nil, fmt.Errorf("receive the segment: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	defer closeAll(fds)
	switch {
	case n == 1 && buf[0] == 'F' && len(fds) == 1:
		seals, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GET_SEALS, 0)
		if err != nil || seals&memfdSeals != memfdSeals {
			return nil, fmt.Errorf("the segment's size is not sealed (seals %#x, %v)", seals, err)
		}
		seg, err := mapShared(fds[0])
		if err == nil {
			seg.memfd = true
		}
		return seg, err
	case n == 1 && buf[0] == 'T' && len(fds) == 1:
		return mapShared(fds[0])
	}
	return nil, fmt.Errorf("unexpected %d-byte segment message with %d descriptors", n, len(fds))
}

// parseRights returns the descriptors an SCM_RIGHTS control message carries (none if oob is
// empty).
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("segment exchange: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("segment exchange: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
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
	if st.Size <= 0 || st.Size > maxSegmentBytes || st.Size > math.MaxInt {
		return nil, fmt.Errorf("segment of %d bytes", st.Size)
	}
	return mapSegment(fd, int(st.Size))
}

// unmap releases the mapping.
func (s *segment) unmap() error {
	var err error
	if s.mem != nil {
		err = unix.Munmap(s.mem)
		s.mem = nil
	}
	return err
}
