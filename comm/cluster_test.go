package comm_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/internal/syncbuf"
	"github.com/gorun-hpc/gorun/launcher"
	"github.com/gorun-hpc/gorun/transport/sock"
)

// Beyond one machine: gorun --hosts and Hydra across three "hosts" (network namespaces, see
// netns_test.go), remote ranks that die with gorun, and a stranger without the job key that
// cannot inject a message.

// TestMultiHost runs the e2e program on three hosts, two ranks each, started by gorun --hosts
// (gorun on h1, the others through the ssh stand-in) and by Hydra: ranks of one host talk
// over shared memory, ranks of different hosts over TCP (the e2e "nodes" mode checks with
// the transport counters that every message went the way Path says), and collectives,
// hierarchical across the hosts, are correct.
func TestMultiHost(t *testing.T) {
	h := newNetHosts(t, "h1", "h2", "h3")
	prog := jobtest.Program(t, "./testdata/e2e")
	gorun := jobtest.Program(t, "../cmd/gorun")
	t.Cleanup(func() { harness.WaitGone(t, prog, 10*time.Second) }) // before the hosts go, even after a failure
	launchers := []struct {
		name string
		argv []string
	}{
		{"gorun", []string{gorun, "--hosts", "h1:2,h2:2,h3:2", "--timeout", "100s",
			"--launch-cmd", h.sshPath + " -o BatchMode=yes {host}", prog}},
	}
	if hydra, err := exec.LookPath("mpiexec.hydra"); err == nil {
		launchers = append(launchers, struct {
			name string
			argv []string
		}{"hydra", []string{hydra, "-hosts", "h1,h2,h3", "-ppn", "2", "-n", "6",
			"-launcher", "ssh", "-launcher-exec", h.sshPath, prog}})
	} else {
		t.Log("mpiexec.hydra is not installed (apt-get install mpich): only gorun --hosts runs")
	}
	for _, l := range launchers {
		t.Run(l.name+"/nodes", func(t *testing.T) {
			out, code := h.run(t, "h1", 2*time.Minute, append(l.argv, "nodes")...)
			if code != 0 || !strings.Contains(out, "e2e nodes ok on 6 ranks") {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			for r := range 6 {
				paths := make([]string, 6)
				for p := range paths {
					switch {
					case p == r:
						paths[p] = "self"
					case p/2 == r/2:
						paths[p] = "shm"
					default:
						paths[p] = "tcp"
					}
				}
				if want := fmt.Sprintf("rank %d node size 2 paths %s", r, strings.Join(paths, ",")); !strings.Contains(out, want) {
					t.Errorf("missing %q in:\n%s", want, out)
				}
			}
		})
		t.Run(l.name+"/coll", func(t *testing.T) {
			out, code := h.run(t, "h1", 2*time.Minute, append(l.argv, "coll")...)
			if code != 0 || !strings.Contains(out, "e2e coll ok on 6 ranks") {
				t.Fatalf("exit %d:\n%s", code, out)
			}
		})
	}
}

// TestMultiHostFailure: a rank on another host fails; gorun ends the job, names the rank and
// its host, and no rank survives on any host.
func TestMultiHostFailure(t *testing.T) {
	h := newNetHosts(t, "h1", "h2")
	prog := jobtest.Program(t, "./testdata/e2e")
	gorun := jobtest.Program(t, "../cmd/gorun")
	t.Cleanup(func() { harness.WaitGone(t, prog, 10*time.Second) })
	out, code := h.run(t, "h1", time.Minute, gorun, "--hosts", "h2:2,h1:2", "--timeout", "50s",
		"--launch-cmd", h.sshPath+" {host}", prog, "exit3")
	if code != 3 || !strings.Contains(out, "gorun: rank 1 (on host h2, launch command pid ") {
		t.Fatalf("exit %d, want 3 and a message naming rank 1 on h2:\n%s", code, out)
	}
}

// remoteHere is a launch command for ranks of "other hosts" that run on this machine: the
// shell starts the rank in the background and waits, so that killing the launch command (as
// gorun does on a failure, or the kernel when gorun dies) leaves the rank running without it,
// as ssh leaves a remote command. Only the rank's watch connection to gorun can end it. (The
// rank's standard input, where gorun puts the job key, is kept on descriptor 3 first: a
// background job's input is /dev/null before its own redirections apply.)
const remoteHere = `sh -c 'exec 3<&0; "$@" <&3 3<&- & wait' {host}`

// TestRemoteRanksDieWithGorun: remote ranks whose launch command is gone die when the job
// ends (canceled here, in a launcher that goes on living) and when gorun itself is killed.
func TestRemoteRanksDieWithGorun(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/cluster")
	hosts := []launcher.Host{{Name: "localhost", Slots: 1}, {Name: "fake-a", Slots: 2}}
	t.Run("job ended", func(t *testing.T) {
		var out syncbuf.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var runErr error
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			runErr = launcher.Run(ctx, launcher.Config{N: 3, Program: prog, Args: []string{"hang"},
				Hosts: hosts, LaunchCmd: remoteHere, PMIAddr: "127.0.0.1", Stdout: &out, Stderr: &out, Timeout: time.Minute})
		}()
		deadline := time.Now().Add(time.Minute)
		for strings.Count(out.String(), "ready ") < 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-finished
		var je *launcher.JobError
		if !errors.As(runErr, &je) || je.Cause != launcher.CauseCanceled || strings.Count(out.String(), "ready ") != 3 {
			t.Fatalf("want 3 ready ranks and a canceled job, got %v:\n%s", runErr, out.String())
		}
		harness.WaitGone(t, prog, 10*time.Second)
	})
	t.Run("gorun killed", func(t *testing.T) {
		gorun := jobtest.Program(t, "../cmd/gorun")
		cmd := exec.Command(gorun, "--hosts", "localhost:1,fake-a:2", "--launch-cmd", remoteHere,
			"--pmi-addr", "127.0.0.1", prog, "hang")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
		defer timer.Stop()
		lines := bufio.NewScanner(stdout)
		for ready := 0; ready < 3 && lines.Scan(); {
			if strings.HasPrefix(lines.Text(), "ready ") {
				ready++
			}
		}
		cmd.Process.Kill()
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		harness.WaitGone(t, prog, 10*time.Second)
	})
}

// TestStrangerCannotInject: while a job runs, a process without the job key connects to rank
// 0's TCP port twice: once sending a forged message frame straight away, once claiming to be
// rank 1 (which starts late, so rank 0 is still waiting for it), answering the challenge
// with a MAC under a wrong key and then sending the frame. Rank 0 must close both
// connections, and afterwards no rank may find a message waiting, while the real ranks
// still talk.
func TestStrangerCannotInject(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/cluster")
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinR.Close()
	defer stdinW.Close()
	var out syncbuf.Buffer
	var runErr error
	finished := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	go func() {
		defer close(finished)
		runErr = launcher.Run(ctx, launcher.Config{N: 2, Program: prog, Args: []string{"guard"},
			Env:   []string{"GORUN_TRANSPORT=tcp", "GUARD_DELAY=2s"},
			Stdin: stdinR, Stdout: &out, Stderr: &out, Timeout: 80 * time.Second})
	}()
	defer func() {
		cancel()
		<-finished
	}()

	addr, err := rankPort(prog, 0, 30*time.Second)
	if err != nil {
		t.Fatalf("rank 0's TCP port: %v\n%s", err, out.String())
	}
	frame := forgedFrame()
	t.Run("no handshake", func(t *testing.T) {
		c := dialIntruder(t, addr)
		c.Write(frame)
		expectClosed(t, c)
	})
	t.Run("wrong key", func(t *testing.T) {
		c := dialIntruder(t, addr)
		hello := make([]byte, 48)
		copy(hello, "gorunHS1")
		binary.LittleEndian.PutUint32(hello[8:], 1) // from: rank 1
		binary.LittleEndian.PutUint32(hello[12:], 0)
		rand.Read(hello[16:])
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		answer := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(c, answer); err != nil {
			// Rank 1 connected first (a slow machine): the claim was refused before any MAC.
			t.Logf("rank 0 refused the claim to be rank 1 at once: %v", err)
			return
		}
		wrongKey := make([]byte, 32)
		rand.Read(wrongKey)
		m := hmac.New(sha256.New, wrongKey)
		m.Write([]byte("initiate"))
		m.Write(hello)
		m.Write(answer[:32])
		c.Write(m.Sum(nil))
		c.Write(frame)
		expectClosed(t, c)
	})
	stdinW.Write([]byte("go\n"))
	<-finished
	if runErr != nil {
		t.Fatalf("job failed: %v\n%s", runErr, out.String())
	}
	if !strings.Contains(out.String(), "guard: nothing delivered from outside; 2 ranks still talk") {
		t.Errorf("no success line:\n%s", out.String())
	}
	// Refusals are reported, not only counted.
	if !strings.Contains(out.String(), "gorun: rank 0 refused a connection from 127.0.0.1:") {
		t.Errorf("the refused connections were not reported:\n%s", out.String())
	}
	harness.WaitGone(t, prog, 10*time.Second)
}

// forgedFrame is an eager message of 8 bytes from "rank 1", tag 99, on the world context.
func forgedFrame() []byte {
	h := sock.Header{Kind: sock.KindEager, Src: 1, Tag: 99, Seq: 1, Len: 8, Size: 8}
	b := make([]byte, sock.HeaderLen+8)
	h.Put(b)
	copy(b[sock.HeaderLen:], "INJECTED")
	return b
}

func dialIntruder(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed fails unless the peer closes c (EOF or reset) without sending anything.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := c.Read(make([]byte, 1))
	switch {
	case n > 0:
		t.Errorf("rank 0 sent data to a connection without the job key")
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("rank 0 kept a connection without the job key open")
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	default:
		t.Errorf("read: %v", err)
	}
}

// rankPort finds the TCP port rank `rank` of prog listens on (from /proc: the rank's
// listening sockets), waiting up to timeout for it to appear.
func rankPort(prog string, rank int, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, pid := range harness.ProcessesOf(prog) {
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if !strings.Contains("\x00"+string(env), fmt.Sprintf("\x00PMI_RANK=%d\x00", rank)) {
				continue
			}
			if port := listeningPort(pid); port > 0 {
				return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("no listening TCP socket of rank %d within %v", rank, timeout)
}

var socketLink = regexp.MustCompile(`^socket:\[(\d+)\]$`)

// listeningPort is the port of a listening TCP socket that process pid holds, or 0.
func listeningPort(pid int) int {
	inodes := map[string]bool{}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil {
			if m := socketLink.FindStringSubmatch(link); m != nil {
				inodes[m[1]] = true
			}
		}
	}
	for _, table := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if port, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				return int(port)
			}
		}
	}
	return 0
}
