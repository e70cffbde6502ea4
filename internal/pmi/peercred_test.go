package pmi

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// strangerEnv tells this test binary, run as another user, to act the stranger
// (TestHelperStranger): "dial ADDR" or "listen ADDR".
const strangerEnv = "GORUN_TEST_STRANGER"

// TestHelperStranger is not a test: it is the stranger's process of
// TestAuthRefusesOtherUserProcess.
func TestHelperStranger(t *testing.T) {
	what, addr, ok := strings.Cut(os.Getenv(strangerEnv), " ")
	if !ok {
		t.Skip("only run by TestAuthRefusesOtherUserProcess")
	}
	switch what {
	case "dial": // try to join as rank 0 and report what happened
		c, err := net.Dial("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("cmd=auth\n"))
		got, _ := io.ReadAll(c)
		os.Stdout.Write([]byte("stranger got [" + string(got) + "]\n"))
	case "listen": // squat the name; serve one connection; then wait to be killed
		ln, err := net.Listen("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.Write([]byte("listening\n"))
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("cmd=auth_challenge key=" + strings.Repeat("00", 32) + "\n"))
		}
		time.Sleep(20 * time.Second)
	}
}

// strangerCmd returns a command running this test binary as uid 65534 in stranger mode.
func strangerCmd(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to start a process of another user")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy the other user can run: the build directory is private.
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "stranger.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestHelperStranger$")
	cmd.Env = append(os.Environ(), strangerEnv+"="+mode)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}}
	return cmd
}

// A process of another user (uid 65534) gets nothing from the rendezvous server, and a rank
// refuses a server of another user that took the socket's name first.
func TestAuthRefusesOtherUserProcess(t *testing.T) {
	t.Run("stranger dials", func(t *testing.T) {
		a := Auth{Job: "j"}
		j := newAuthJob(t, "unix", 1, &a, nil)
		out, err := strangerCmd(t, "dial "+j.ln.Addr().String()).CombinedOutput()
		if err != nil {
			t.Skipf("could not run a process as uid 65534 here: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "stranger got []") {
			t.Errorf("the stranger's process got a reply:\n%s", out)
		}
		if e := j.nextEnd(t); e.rank != -1 || !errors.Is(e.err, ErrUnauthenticated) || !strings.Contains(e.err.Error(), "uid 65534") {
			t.Errorf("its connection ended %+v, want refused for uid 65534", e)
		}
	})
	t.Run("stranger serves", func(t *testing.T) {
		addr := "@gorun-test-squat-" + hex.EncodeToString(randomBytes()[:8])
		cmd := strangerCmd(t, "listen "+addr)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Skipf("could not run a process as uid 65534 here: %v", err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		buf := make([]byte, 10)
		if n, _ := io.ReadFull(stdout, buf); string(buf[:n]) != "listening\n" {
			t.Skipf("the stranger did not listen: %q", buf[:n])
		}
		c, err := net.Dial("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPeerUID(c, os.Getuid()); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("CheckPeerUID of the stranger's server: %v", err)
		}
		if _, key, err := JoinAuth(c, 0, Auth{Job: "j"}); !errors.Is(err, ErrUnauthenticated) || key != nil {
			t.Errorf("JoinAuth took key %x from the stranger's server: %v", key, err)
		}
	})
}
