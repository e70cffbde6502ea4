package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/launcher"
)

func TestParseArgsHosts(t *testing.T) {
	hostfile := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hostfile, []byte("# two nodes\nnode1 slots=3\nnode2:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// 17 hosts of 65536 slots: more ranks in all than the launcher takes.
	bigfile := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(bigfile, []byte(strings.Repeat("node slots=65536\n", 17)), 0o600); err != nil {
		t.Fatal(err)
	}
	hugeSlots := filepath.Join(t.TempDir(), "huge")
	if err := os.WriteFile(hugeSlots, []byte("node slots=4611686018427387904\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ab := []launcher.Host{{Name: "a", Slots: 4}, {Name: "b", Slots: 4}}
	for _, tc := range []struct {
		name      string
		args      []string
		n         int
		hosts     []launcher.Host
		launchCmd string
		pmiAddr   string
	}{
		{"one rank per slot", []string{"--hosts", "a:4,b:4", "p"}, 8, ab, "", ""},
		{"-n given", []string{"--hosts", "a:4,b:4", "-n", "6", "p"}, 6, ab, "", ""},
		{"hostfile", []string{"--hostfile", hostfile, "p"}, 5,
			[]launcher.Host{{Name: "node1", Slots: 3}, {Name: "node2", Slots: 2}}, "", ""},
		{"launch command and address", []string{"--hosts=a,b", "--launch-cmd", "ip netns exec {host}", "--pmi-addr", "10.1.0.5", "p"},
			2, []launcher.Host{{Name: "a", Slots: 1}, {Name: "b", Slots: 1}}, "ip netns exec {host}", "10.1.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := parseArgs(tc.args, fakeEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			c := inv.cfg
			if c.N != tc.n || !reflect.DeepEqual(c.Hosts, tc.hosts) || c.LaunchCmd != tc.launchCmd || c.PMIAddr != tc.pmiAddr || c.Program != "p" {
				t.Errorf("parseArgs(%q) = N %d hosts %v launch %q addr %q program %q", tc.args, c.N, c.Hosts, c.LaunchCmd, c.PMIAddr, c.Program)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--hosts", "a:4", "--hostfile", hostfile, "p"}, "not both"},
		{[]string{"--hosts", "a:x", "p"}, "slots must be"},
		{[]string{"--hosts", "a:9223372036854775807", "p"}, `"a:9223372036854775807": slots must be a number from 1 to 65536`},
		{[]string{"--hosts", "a:9223372036854775807", "-n", "1", "p"}, "slots must be a number from 1 to 65536"},
		{[]string{"--hosts", "a:-2", "p"}, "slots must be"},
		{[]string{"--hostfile", bigfile, "p"}, "more than 1048576 slots in all"},
		{[]string{"--hostfile", hugeSlots, "p"}, `slots=4611686018427387904": slots must be a number from 1 to 65536`},
		{[]string{"--hostfile", hostfile + ".missing", "p"}, "host file"},
		{[]string{"--launch-cmd", "ssh {host}", "p"}, "need --hosts"},
		{[]string{"--pmi-addr", "10.0.0.1", "p"}, "need --hosts"},
	} {
		if _, err := parseArgs(tc.args, fakeEnv(nil)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseArgs(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// Too many ranks for the slots is a usage problem gorun reports before
// starting anything.
func TestRunTooManyRanksForHosts(t *testing.T) {
	var stdout, stderr strings.Builder
	code := run([]string{"--hosts", "a:1,b:1", "-n", "3", "/bin/true"}, fakeEnv(nil), nil, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "3 ranks but the hosts have only 2 slots") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
