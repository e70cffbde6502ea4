package comm_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netHosts is a set of "hosts" on this machine, each a process holding its own network, UTS
// and mount namespaces: a distinct IP address (192.0.2.0/24, TEST-NET-1, reachable from
// nowhere else) on a veth whose other end is on a bridge, a distinct host name, its own tmpfs
// on /dev/shm and its own /etc/hosts naming all of them. The bridge lives in a network
// namespace of its own; nothing is added to the machine's own namespace. Enter a host with
// nsenter -t PID -n -u -m (see enter); sshPath is an ssh stand-in that does so, for gorun's
// launch command and Hydra's -launcher-exec.
//
// Namespaces have no names in the file system (no ip netns add): each lives as long as a
// process is in it. Cleanup kills the holders, and with them everything is gone.
type netHosts struct {
	names   []string
	pids    map[string]int // host → pid of its holder
	sshPath string
}

// holderLife bounds how long a holder lives should cleanup never run (the test binary
// killed): the namespaces end with it.
const holderLife = "600"

// newNetHosts builds the hosts, or skips the test, saying why, where the machine cannot.
func newNetHosts(t *testing.T, names ...string) *netHosts {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root; skipping the multi-host test")
	}
	for _, cmd := range []string{"ip", "unshare", "nsenter", "mount", "hostname"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("%s is not installed (apt-get install iproute2 util-linux); skipping the multi-host test", cmd)
		}
	}
	dir := t.TempDir()
	h := &netHosts{names: names, pids: map[string]int{}, sshPath: filepath.Join(dir, "ssh")}
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1 localhost\n")
	for i, name := range names {
		fmt.Fprintf(&hosts, "%s %s\n", hostIP(i), name)
	}
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(hosts.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	bridge, err := startHolder(t, []string{"--net"},
		"ip link set lo up && ip link add br0 type bridge && ip link set br0 up")
	if err != nil {
		t.Skipf("cannot make a network namespace here (%v); skipping the multi-host test", err)
	}
	for i, name := range names {
		pid, err := startHolder(t, []string{"--net", "--uts", "--mount", "--propagation", "private"},
			fmt.Sprintf("hostname %s && mount -t tmpfs -o size=64m,mode=1777 gorun-shm /dev/shm && "+
				"mount --bind %s /etc/hosts && ip link set lo up", name, hostsFile))
		if err != nil {
			t.Fatalf("host %s: %v", name, err)
		}
		h.pids[name] = pid
		veth := "veth-" + strconv.Itoa(i)
		for _, step := range []struct {
			pid  int
			args string
		}{
			{bridge, fmt.Sprintf("ip link add %s type veth peer name eth0 netns %d", veth, pid)},
			{bridge, fmt.Sprintf("ip link set %s master br0 up", veth)},
			{pid, fmt.Sprintf("ip addr add %s/24 dev eth0", hostIP(i))},
			{pid, "ip link set eth0 up"},
		} {
			args := append([]string{"-t", strconv.Itoa(step.pid), "-n"}, strings.Fields(step.args)...)
			if out, err := exec.Command("nsenter", args...).CombinedOutput(); err != nil {
				t.Fatalf("host %s: %s: %v\n%s", name, step.args, err, out)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name+".pid"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ssh's stand-in: skip ssh's options, take the host, and have a shell run the rest joined by
	// spaces, as sshd does, inside the host's namespaces.
	ssh := fmt.Sprintf(`#!/bin/sh
while [ $# -gt 0 ]; do
	case $1 in -o|-l|-p|-i) shift 2 ;; -*) shift ;; *) break ;; esac
done
host=$1; shift
exec nsenter -t "$(cat %s/"$host".pid)" -n -u -m -- sh -c "$*"
`, dir)
	if err := os.WriteFile(h.sshPath, []byte(ssh), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func hostIP(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }

// startHolder starts `unshare FLAGS sh -c SETUP && sleep`, waits until SETUP has run, and
// registers its end with t.Cleanup. It returns the holder's pid: its namespaces' handle.
func startHolder(t *testing.T, flags []string, setup string) (int, error) {
	t.Helper()
	args := append(flags, "sh", "-c", setup+" && echo ready && exec sleep "+holderLife)
	cmd := exec.Command("unshare", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("holder said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = fmt.Errorf("holder not ready after 10s")
	}
	if err != nil {
		cmd.Process.Kill()
		return 0, fmt.Errorf("unshare %s: %v: %s", strings.Join(flags, " "), err, strings.TrimSpace(stderr.String()))
	}
	return cmd.Process.Pid, nil
}

// run runs argv inside host's namespaces and returns its combined output and exit status.
func (h *netHosts) run(t *testing.T, host string, timeout time.Duration, argv ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"-t", strconv.Itoa(h.pids[host]), "-n", "-u", "-m", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // should the test binary die
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%q did not finish within %v:\n%s", argv, timeout, out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	return string(out), code
}
