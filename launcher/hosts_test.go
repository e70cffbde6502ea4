package launcher

import (
	"math"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseHosts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Host
		err  string
	}{
		{"a:4,b:4", []Host{{"a", 4}, {"b", 4}}, ""},
		{"a,b:2", []Host{{"a", 1}, {"b", 2}}, ""},
		{" a:1 , b ", []Host{{"a", 1}, {"b", 1}}, ""},
		{"[::1]:3,fe80::1,[2001:db8::1]", []Host{{"::1", 3}, {"fe80::1", 1}, {"2001:db8::1", 1}}, ""},
		{"user@node7:2", []Host{{"user@node7", 2}}, ""},
		{"a:0", nil, "slots must be"},
		{"a:x", nil, "slots must be"},
		{"a:65536", []Host{{"a", 65536}}, ""},
		{"a:65537", nil, "slots must be a number from 1 to 65536"},
		{"a:9223372036854775807", nil, `"a:9223372036854775807": slots must be a number from 1 to 65536`},
		{"a:99999999999999999999", nil, "slots must be"},
		{"a:-1", nil, "slots must be"},
		{"a:+1", []Host{{"a", 1}}, ""},
		{"[::1]:70000", nil, "slots must be"},
		{"[]", nil, "no host name"},
		{"[]:2", nil, "want NAME"},
		{"a,,b", nil, "empty entry"},
		{":4", nil, "want NAME"},
		{"", nil, "empty entry"},
	} {
		got, err := ParseHosts(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseHosts(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseHosts(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseHostfile(t *testing.T) {
	good := `# the cluster
node1 slots=4
node2 slots=2 max_slots=8   # Open MPI's form
node3:3                     # Hydra's form

node4
`
	got, err := parseHostfile(strings.NewReader(good), "hf")
	want := []Host{{"node1", 4}, {"node2", 2}, {"node3", 3}, {"node4", 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseHostfile = %v, %v; want %v", got, err, want)
	}
	for _, tc := range []struct{ in, err string }{
		{"a slots=0\n", "hf:1: \"slots=0\""},
		{"a\nb cpus=2\n", "hf:2: \"cpus=2\": unknown"},
		{"# nothing\n\n", "hf: no hosts"},
		{"a:2:3\n", "hf:1"},
		{"a slots=9223372036854775807\n", `hf:1: "slots=9223372036854775807": slots must be a number from 1 to 65536`},
		{"a slots=-1\n", "hf:1: \"slots=-1\""},
		{"a:65537\n", "hf:1"},
		{"a slots=\n", "hf:1"},
	} {
		if _, err := parseHostfile(strings.NewReader(tc.in), "hf"); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseHostfile(%q) error %v, want %q", tc.in, err, tc.err)
		}
	}
	if _, err := ReadHostfile(t.TempDir() + "/missing"); err == nil {
		t.Error("ReadHostfile of a missing file: no error")
	}
}

func TestLayout(t *testing.T) {
	local := func(name string) bool { return name == "me" }
	type want struct {
		host       string
		remote     bool
		local, loc int // local index, local size
	}
	for _, tc := range []struct {
		name    string
		n       int
		hosts   []Host
		mapping string
		want    []want
		err     string
	}{
		{"two hosts", 4, []Host{{"me", 2}, {"b", 2}}, "(vector,(0,2,2))",
			[]want{{"me", false, 0, 2}, {"me", false, 1, 2}, {"b", true, 0, 2}, {"b", true, 1, 2}}, ""},
		{"fewer ranks than slots", 3, []Host{{"a", 2}, {"b", 2}, {"c", 2}}, "(vector,(0,1,2),(1,1,1))",
			[]want{{"a", true, 0, 2}, {"a", true, 1, 2}, {"b", true, 0, 1}}, ""},
		{"uneven", 6, []Host{{"a", 1}, {"b", 1}, {"me", 4}}, "(vector,(0,2,1),(2,1,4))",
			[]want{{"a", true, 0, 1}, {"b", true, 0, 1}, {"me", false, 0, 4}, {"me", false, 1, 4}, {"me", false, 2, 4}, {"me", false, 3, 4}}, ""},
		{"host listed twice", 3, []Host{{"a", 1}, {"b", 1}, {"a", 1}}, "(vector,(0,1,2),(1,1,1))",
			[]want{{"a", true, 0, 2}, {"a", true, 1, 2}, {"b", true, 0, 1}}, ""},
		{"too many ranks", 5, []Host{{"a", 2}, {"b", 2}}, "", nil, "only 4 slots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slots, err := layout(tc.n, tc.hosts, local)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("layout error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for r, w := range tc.want {
				s := slots[r]
				if s.host != w.host || s.remote != w.remote || s.local != w.local || s.localSize != w.loc {
					t.Errorf("rank %d: %+v, want %+v", r, s, w)
				}
			}
			if got := processMapping(slots); got != tc.mapping {
				t.Errorf("mapping %s, want %s", got, tc.mapping)
			}
		})
	}
	if _, err := layout(2, []Host{{"localhost", 1}, {"me", 1}}, func(n string) bool { return true }); err == nil {
		t.Error("two names for this machine: no error")
	}
	slots, _ := layout(3, nil, local)
	if slots[2] != (slot{local: 2, localSize: 3}) {
		t.Errorf("no hosts: rank 2 is %+v", slots[2])
	}
}

func TestIsLocalName(t *testing.T) {
	for _, tc := range []struct {
		name, self string
		want       bool
	}{
		{"localhost", "node1", true},
		{"127.0.0.1", "node1", true},
		{"::1", "node1", true},
		{"node1", "node1", true},
		{"NODE1", "node1", true},
		{"node1.cluster", "node1", true},
		{"node1", "node1.cluster", true},
		{"node1.other", "node1.cluster", false},
		{"node2", "node1", false},
		{"10.0.0.1", "node1", false},
	} {
		if got := isLocalName(tc.name, tc.self); got != tc.want {
			t.Errorf("isLocalName(%q, %q) = %v", tc.name, tc.self, got)
		}
	}
}

func TestLaunchCommand(t *testing.T) {
	for _, tc := range []struct {
		tmpl, host string
		want       []string
		err        string
	}{
		{DefaultLaunchCmd, "b", []string{"ssh", "-o", "BatchMode=yes", "b", "env", "'A=x y'", "prog"}, ""},
		{"ip netns exec {host}", "h2", []string{"ip", "netns", "exec", "h2", "env", "A=x y", "prog"}, ""},
		{`"/opt/my tools/enter" --node={host}`, "n1", []string{"/opt/my tools/enter", "--node=n1", "env", "A=x y", "prog"}, ""},
		{`/usr/bin/ssh -l 'me' {host}`, "n1", []string{"/usr/bin/ssh", "-l", "me", "n1", "env", "'A=x y'", "prog"}, ""},
		{"ssh", "b", nil, "no {host}"},
		{"ssh '{host}", "b", nil, "unterminated"},
		{"  ", "b", nil, "empty"},
	} {
		lt, err := parseLaunchCmd(tc.tmpl)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseLaunchCmd(%q) error %v, want %q", tc.tmpl, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseLaunchCmd(%q): %v", tc.tmpl, err)
			continue
		}
		if got := lt.command(tc.host, []string{"env", "A=x y", "prog"}); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q on %s: %q, want %q", tc.tmpl, tc.host, got, tc.want)
		}
	}
}

// What ssh does with its arguments: join them with spaces and have a shell
// parse the result. The words must come out as they went in.
func TestShellQuoteRoundTrip(t *testing.T) {
	words := []string{"plain", "A=b", "with space", "it's", `"double"`, "$HOME", "`id`", "a\\b", "*", "", "new\nline", "semi;colon", "ünïcode"}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	out, err := exec.Command("sh", "-c", `printf '%s\0' `+strings.Join(quoted, " ")).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, words) {
		t.Errorf("sh parsed %q back as %q", words, got)
	}
}

func TestHostsConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{N: 5, Program: "x", Hosts: []Host{{"a", 2}, {"b", 2}}}, "only 4 slots"},
		{Config{N: 1, Program: "x", Hosts: []Host{{"a", math.MaxInt}}}, "want 1 to 65536"},
		{Config{N: 1, Program: "x", Hosts: []Host{{"a", 0}}}, "want 1 to 65536"},
		{Config{N: 1, Program: "x", Hosts: []Host{{"a", -1}}}, "want 1 to 65536"},
		{Config{N: 1, Program: "x", Hosts: []Host{{"a b", 2}}}, "not a host name"},
		{Config{N: 1, Program: "x", Hosts: []Host{{"a", 1}}, LaunchCmd: "ssh a"}, "no {host}"},
		{Config{N: 1, Program: "x", LaunchCmd: "ssh {host}"}, "only to a job with Hosts"},
		{Config{N: 1, Program: "x", PMIAddr: "10.0.0.1"}, "only to a job with Hosts"},
	} {
		if _, err := tc.cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// The slots of many hosts add up without overflow: past MaxRanks in all is an error.
func TestTotalSlots(t *testing.T) {
	many := make([]Host, MaxRanks/MaxSlots+1)
	for i := range many {
		many[i] = Host{Name: "h" + strconv.Itoa(i), Slots: MaxSlots}
	}
	if _, err := TotalSlots(many); err == nil || !strings.Contains(err.Error(), "more than 1048576 slots") {
		t.Errorf("%d hosts of %d slots: %v", len(many), MaxSlots, err)
	}
	if n, err := TotalSlots(many[1:]); err != nil || n != MaxRanks {
		t.Errorf("exactly MaxRanks: %d, %v", n, err)
	}
	if err := checkHosts(many, 1); err == nil {
		t.Error("checkHosts accepted more than MaxRanks slots")
	}
	if _, err := TotalSlots([]Host{{"a", 1}, {"b", math.MaxInt}}); err == nil {
		t.Error("a host of MaxInt slots accepted")
	}
}

// FuzzParseHosts: a host list comes from the command line. Parsing never panics, and what it
// accepts has names and slot counts the launcher takes.
func FuzzParseHosts(f *testing.F) {
	for _, s := range []string{"a:4,b:4", "a,b:2", "[::1]:3,fe80::1", "a:9223372036854775807", "a:0", ":4", " a , b:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		hosts, err := ParseHosts(list)
		if err != nil {
			return
		}
		checkParsedHosts(t, hosts)
	})
}

// FuzzParseHostfile: likewise for a host file.
func FuzzParseHostfile(f *testing.F) {
	for _, s := range []string{"# c\nnode1 slots=4\nnode2 slots=2 max_slots=8\nnode3:3\n\nnode4\n", "a slots=9223372036854775807\n",
		"a slots=1 slots=2\n", "[::1]:2 slots=3\n", "a\x00b\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		hosts, err := parseHostfile(strings.NewReader(text), "fuzz")
		if err != nil {
			return
		}
		checkParsedHosts(t, hosts)
	})
}

func checkParsedHosts(t *testing.T, hosts []Host) {
	t.Helper()
	if len(hosts) == 0 {
		t.Fatal("no hosts and no error")
	}
	for _, h := range hosts {
		if h.Name == "" || h.Slots < 1 || h.Slots > MaxSlots {
			t.Fatalf("accepted %+v", h)
		}
	}
	total, err := TotalSlots(hosts)
	if err != nil {
		return // too many in all: Config's check reports it
	}
	if total < len(hosts) {
		t.Fatalf("%d hosts, %d slots", len(hosts), total)
	}
	if slots, err := layout(min(total, 64), hosts, func(string) bool { return false }); err == nil && len(slots) != min(total, 64) {
		t.Fatalf("layout of %d ranks gave %d slots", min(total, 64), len(slots))
	}
}
