package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteText compares the printed tree with testdata/golden/*.txt; run
// `go test ./topology -run WriteText -update` to rewrite them after a
// deliberate change, and read the diff.
func TestWriteText(t *testing.T) {
	tests := []struct {
		golden string
		m      *Machine
		ranks  int
		bind   BindTo
		mapBy  MapBy
	}{
		{"2socket-l3.txt", twoSocket(t), 8, BindCore, MapL3},
		{"2socket-oversubscribed.txt", twoSocket(t), 20, BindDefault, MapCore},
		{"nocache.txt", mustDiscover(t, env{sysRoot: tree("sys-nocache"), cpu: knownFacts}), 0, 0, 0},
		{"malformed.txt", withAllowed(t, mustDiscover(t, env{sysRoot: tree("sys-malformed"), cpu: unknownFacts}), "1-2"), 2, BindDefault, MapCore},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			var placement []Placement
			if tc.ranks > 0 {
				var err error
				if placement, err = Place(tc.m, tc.ranks, tc.bind, tc.mapBy); err != nil {
					t.Fatal(err)
				}
			}
			var b bytes.Buffer
			if err := tc.m.WriteText(&b, placement); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.golden)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("WriteText differs from %s:\n--- got\n%s--- want\n%s", path, b.Bytes(), want)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	m := twoSocket(t)
	m.Quota = 1.5
	placement, err := Place(m, 2, BindCore, MapNUMA)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.WriteJSON(&b, placement); err != nil {
		t.Fatal(err)
	}
	// The field names are a contract with tools: check them literally.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatalf("%v in\n%s", err, b.Bytes())
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"allowed", "caches", "cpus", "family", "features", "line_size", "model", "model_number",
		"numa_nodes", "packages", "placement", "quota", "sources", "usable_cpus", "vendor"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	var got struct {
		CPUs       string  `json:"cpus"`
		UsableCPUs int     `json:"usable_cpus"`
		Quota      float64 `json:"quota"`
		Packages   []struct {
			ID    int `json:"id"`
			Cores []struct {
				ID   int    `json:"id"`
				CPUs string `json:"cpus"`
			} `json:"cores"`
		} `json:"packages"`
		Caches []struct {
			Level      int    `json:"level"`
			Type       string `json:"type"`
			SizeBytes  int64  `json:"size_bytes"`
			LineSize   int    `json:"line_size"`
			SharedCPUs string `json:"shared_cpus"`
		} `json:"caches"`
		Placement []struct {
			Rank       int    `json:"rank"`
			CPUs       string `json:"cpus"`
			GOMAXPROCS int    `json:"gomaxprocs"`
		} `json:"placement"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.CPUs != "0-15" || got.UsableCPUs != 2 || got.Quota != 1.5 || len(got.Packages) != 2 ||
		got.Packages[1].Cores[3].CPUs != "7,15" || len(got.Placement) != 2 || got.Placement[1].CPUs != "4,12" {
		t.Errorf("decoded %+v", got)
	}
	last := got.Caches[len(got.Caches)-1]
	if last.Level != 3 || last.Type != "Unified" || last.SizeBytes != 30<<20 || last.SharedCPUs != "4-7,12-15" {
		t.Errorf("last cache %+v", last)
	}

	// Empty lists are [] and placement is left out when nil.
	b.Reset()
	cpus, _ := ParseCPUSet("0")
	if err := (&Machine{CPUs: cpus, Allowed: cpus, LineSize: 64}).WriteJSON(&b, nil); err != nil {
		t.Fatal(err)
	}
	raw = nil // Unmarshal into a map keeps the keys already there
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["features"]) != "[]" || string(raw["caches"]) != "[]" {
		t.Errorf("empty lists encoded as %s and %s", raw["features"], raw["caches"])
	}
	if _, ok := raw["placement"]; ok {
		t.Error("placement present without placements")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	m := twoSocket(t)
	if err := m.WriteText(failWriter{}, nil); err == nil {
		t.Error("WriteText to a failing writer succeeded")
	}
	if err := m.WriteJSON(failWriter{}, nil); err == nil {
		t.Error("WriteJSON to a failing writer succeeded")
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 48 << 10: "48 KiB", 1 << 20: "1 MiB", 1536 << 10: "1536 KiB",
		32 << 20: "32 MiB", 2 << 30: "2 GiB", 1<<20 + 1: "1048577 B",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
