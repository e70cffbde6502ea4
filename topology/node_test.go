package topology

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNodeID(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot_id")
	if err := os.WriteFile(boot, []byte("1b27ddce-b11c-4630-a1a1-24999e0f8764\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noBoot := filepath.Join(dir, "missing")
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == NodeEnv {
				return v
			}
			return ""
		}
	}
	host := func() (string, error) { return "hpc7", nil }
	noHost := func() (string, error) { return "", errors.New("uname failed") }
	tests := []struct {
		name     string
		getenv   func(string) string
		hostname func() (string, error)
		bootPath string
		want     string
	}{
		{"GORUN_NODE wins", env("node-b"), host, boot, "node-b"},
		{"host and boot id", env(""), host, boot, "hpc7/1b27ddce-b11c-4630-a1a1-24999e0f8764"},
		{"nil getenv", nil, host, boot, "hpc7/1b27ddce-b11c-4630-a1a1-24999e0f8764"},
		{"no boot id", env(""), host, noBoot, "hpc7"},
		{"no host name", env(""), noHost, boot, "1b27ddce-b11c-4630-a1a1-24999e0f8764"},
		{"nothing known", env(""), noHost, noBoot, "localhost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeID(tc.getenv, tc.hostname, tc.bootPath); got != tc.want {
				t.Errorf("nodeID = %q, want %q", got, tc.want)
			}
		})
	}

	// The real one: same answer twice, and GORUN_NODE overrides it.
	a, b := NodeID(env("")), NodeID(env(""))
	if a == "" || a != b {
		t.Errorf("NodeID() = %q then %q", a, b)
	}
	if h, err := os.Hostname(); err == nil && !strings.HasPrefix(a, h) {
		t.Errorf("NodeID() = %q, want it to start with the host name %q", a, h)
	}
	if got := NodeID(env("x")); got != "x" {
		t.Errorf("NodeID with GORUN_NODE=x = %q", got)
	}
}

func TestParseProcessMapping(t *testing.T) {
	tests := []struct {
		name string
		in   string
		size int
		want []int // nil: an error is expected
	}{
		{"blocks", "(vector,(0,2,4),(2,1,3))", 11, []int{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2}},
		{"fewer ranks than mapped", "(vector,(0,2,4),(2,1,3))", 5, []int{0, 0, 0, 0, 1}},
		{"one node", "(vector,(0,1,4))", 4, []int{0, 0, 0, 0}},
		{"cyclic, all on one node", "(vector,(0,1,1))", 3, []int{0, 0, 0}},
		{"cyclic over four nodes", "(vector,(0,4,1))", 8, []int{0, 1, 2, 3, 0, 1, 2, 3}},
		{"cyclic, two per node", "(vector,(0,2,2))", 6, []int{0, 0, 1, 1, 0, 0}},
		{"blocks not from zero", "(vector,(3,1,2),(0,1,1))", 3, []int{3, 3, 0}},
		{"spaces", " ( vector , (0,2,1) )\n", 2, []int{0, 1}},
		{"size zero", "(vector,(0,1,1))", 0, []int{}},
		{"empty", "", 2, nil},
		{"no vector", "(0,1,1)", 2, nil},
		{"wrong keyword", "(vektor,(0,1,1))", 2, nil},
		{"no triples", "(vector,)", 2, nil},
		{"vector only", "(vector)", 2, nil},
		{"two fields", "(vector,(0,1))", 2, nil},
		{"four fields", "(vector,(0,1,1,1))", 2, nil},
		{"zero nodes", "(vector,(0,0,1))", 2, nil},
		{"zero ranks", "(vector,(0,1,0))", 2, nil},
		{"negative", "(vector,(-1,1,1))", 2, nil},
		{"huge", "(vector,(0,1,99999999999999999999))", 2, nil},
		{"unclosed", "(vector,(0,1,1)", 2, nil},
		{"trailing comma", "(vector,(0,1,1),)", 2, nil},
		{"junk after", "(vector,(0,1,1))x", 2, nil},
		{"junk between", "(vector,(0,1,1)x(1,1,1))", 2, nil},
		{"negative size", "(vector,(0,1,1))", -1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProcessMapping(tc.in, tc.size)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("ParseProcessMapping(%q) = %v, want an error", tc.in, got)
				}
				if !errors.Is(err, ErrProcessMapping) {
					t.Errorf("error %v does not wrap ErrProcessMapping", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseProcessMapping(%q, %d) = %v, %v; want %v", tc.in, tc.size, got, err, tc.want)
			}
		})
	}
}

// FuzzParseProcessMapping feeds arbitrary values, as a broken or hostile PMI
// server could send. Seeds live in testdata/fuzz/FuzzParseProcessMapping.
func FuzzParseProcessMapping(f *testing.F) {
	f.Add("(vector,(0,2,4),(2,1,3))", 11)
	f.Fuzz(func(t *testing.T, in string, size int) {
		size %= 4096 // the caller's world size, not part of the untrusted input
		got, err := ParseProcessMapping(in, size)
		if err != nil {
			if !errors.Is(err, ErrProcessMapping) {
				t.Fatalf("error %v does not wrap ErrProcessMapping", err)
			}
			return
		}
		if len(got) != size {
			t.Fatalf("%d nodes for %d ranks", len(got), size)
		}
		for r, n := range got {
			if n < 0 {
				t.Fatalf("rank %d on node %d", r, n)
			}
		}
	})
}
