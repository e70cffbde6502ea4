package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
)

// Ranks on "other hosts" here run on this machine too: the launch command
// is a stand-in that starts its arguments locally (env, or a fake ssh), so
// these tests need no second machine. What makes a rank remote is that
// gorun starts it through the launch command and it joins over TCP
// (PMI_PORT); comm's cluster tests run real hosts in network namespaces.

// envLaunch is a launch command that runs the rank here, telling it its
// host's name. The tests give PMIAddr: the fake hosts' names resolve
// nowhere, and looking them up would only ask the DNS. (The route to a real
// host is what comm's multi-host test uses.)
const envLaunch = "env GORUN_TEST_HOST={host}"

var whereLine = regexp.MustCompile(`(?m)^(?:\[\d+\] )?where rank=(\d+) host=(\S*) local=(\S*) watch=(\S+)$`)

func TestRemoteRanks(t *testing.T) {
	harness.CheckLeaks(t)
	j, err := runJob(t, Config{N: 4, Program: bin.pmiexchange, TagOutput: true,
		Hosts: []Host{{"localhost", 2}, {"fake-b", 3}}, LaunchCmd: envLaunch, PMIAddr: "127.0.0.1"}, 20*time.Second)
	if err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, j.stderr)
	}
	out := j.stdout.String()
	for r := range 4 {
		if want := fmt.Sprintf("[%d] rank %d ok: 4 cards, mapping (vector,(0,2,2))\n", r, r); !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	for _, m := range envLine.FindAllStringSubmatch(out, -1) {
		remote := m[1] >= "2"
		if remote != (m[8] != "") || remote != (m[3] == "") {
			t.Errorf("rank %s: PMI_FD=%q PMI_PORT=%q; want a port exactly for ranks 2 and 3", m[1], m[3], m[8])
		}
		if remote && m[5] != "stdin" || !remote && len(m[5]) != 64 {
			t.Errorf("rank %s got GORUN_JOB_KEY %q: want the key itself locally, \"stdin\" remotely", m[1], m[5])
		}
	}
	if n := strings.Count(out, "stdin key bytes=32\n"); n != 2 {
		t.Errorf("%d remote ranks read a 32-byte key from standard input, want 2", n)
	}
	want := map[string]string{"0": "/0/2/false", "1": "/1/2/false", "2": "fake-b/0/2/true", "3": "fake-b/1/2/true"}
	got := map[string]string{}
	for _, m := range whereLine.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2] + "/" + m[3] + "/" + m[4]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("host/local rank/local size/watch by rank: %v, want %v\n%s", got, want, out)
	}
}

// fakeSSH writes a stand-in for ssh: it skips ssh's options, takes the
// host, and has a shell run the rest joined by spaces, as sshd does, with
// an environment that holds nothing from gorun (ssh forwards none).
func fakeSSH(t *testing.T) string {
	dir := t.TempDir()
	script := `#!/bin/sh
while [ $# -gt 0 ]; do
	case $1 in -o|-l|-p) shift 2 ;; -*) shift ;; *) break ;; esac
done
host=$1; shift
exec env -i PATH="$PATH" GORUN_TEST_HOST="$host" sh -c "$*"
`
	path := filepath.Join(dir, "ssh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRemoteThroughSSH(t *testing.T) {
	harness.CheckLeaks(t)
	t.Setenv("GORUN_TEST_INHERITED", "yes") // GORUN_* settings travel on the command line
	extra := `it's "a" $b`
	j, err := runJob(t, Config{N: 2, Program: bin.pmiexchange, Env: []string{"GORUN_TEST_EXTRA=" + extra},
		Hosts: []Host{{"fake-a", 1}, {"fake-b", 1}}, LaunchCmd: fakeSSH(t) + " -o BatchMode=yes {host}", PMIAddr: "localhost"}, 20*time.Second)
	if err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, j.stderr)
	}
	out := j.stdout.String()
	for _, want := range []string{
		"rank 0 ok: 2 cards, mapping (vector,(0,2,1))",
		"where rank=0 host=fake-a local=0/1 watch=true",
		"where rank=1 host=fake-b local=0/1 watch=true",
		"extra=" + extra + " inherited=yes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestRemoteRankFails(t *testing.T) {
	harness.CheckLeaks(t)
	j := startJob(t, Config{N: 4, Program: bin.sleeper, Args: []string{"-fail-rank", "3", "-code", "5", "-meet"},
		Hosts: []Host{{"localhost", 2}, {"fake-b", 2}}, LaunchCmd: envLaunch, PMIAddr: "127.0.0.1"}, 20*time.Second)
	pids := j.waitPids(t, 4)
	je := jobError(t, j.wait(t))
	if len(je.Ranks) == 0 || je.Ranks[0].Host != "fake-b" || je.ExitCode() != 5 ||
		!strings.Contains(je.Error(), "rank 3 (on host fake-b, launch command pid ") {
		t.Errorf("JobError %q (exit code %d), want rank 3 on fake-b, status 5", je, je.ExitCode())
	}
	assertGone(t, pids)
}

func TestRemoteRankAborts(t *testing.T) {
	harness.CheckLeaks(t)
	_, err := runJob(t, Config{N: 3, Program: bin.pmiexchange, Args: []string{"-abort-rank", "2", "-code", "9"},
		Hosts: []Host{{"localhost", 1}, {"fake-b", 2}}, LaunchCmd: envLaunch, PMIAddr: "127.0.0.1"}, 20*time.Second)
	je := jobError(t, err)
	if je.Cause != CauseAbort || je.ExitCode() != 9 || je.Ranks[0].Rank != 2 || je.Ranks[0].Host != "fake-b" {
		t.Errorf("JobError %q (cause %v, exit code %d), want rank 2's abort with 9", je, je.Cause, je.ExitCode())
	}
}

// A launch command that cannot run fails the job at once, naming the host.
func TestLaunchCommandMissing(t *testing.T) {
	harness.CheckLeaks(t)
	_, err := runJob(t, Config{N: 2, Program: bin.sleeper, Hosts: []Host{{"localhost", 1}, {"b", 1}},
		LaunchCmd: "/nonexistent/ssh {host}", PMIAddr: "127.0.0.1"}, 20*time.Second)
	je := jobError(t, err)
	if je.Cause != CauseSetup || !strings.Contains(je.Error(), "launch command for host b") {
		t.Errorf("JobError %q (cause %v), want a setup error naming host b", je, je.Cause)
	}
}

// The address advertised to a host is the source of this machine's route
// to it.
func TestRouteSource(t *testing.T) {
	if got := routeSource("127.0.0.1"); got != "127.0.0.1" {
		t.Errorf("routeSource(127.0.0.1) = %q", got)
	}
	if got := routeSource("me@127.0.0.1"); got != "127.0.0.1" {
		t.Errorf("routeSource(me@127.0.0.1) = %q", got)
	}
}
