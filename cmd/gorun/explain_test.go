package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/tuning"
)

func TestExplainArgs(t *testing.T) {
	inv, err := parseArgs([]string{"--explain"}, fakeEnv(nil))
	if err != nil || !inv.explain {
		t.Errorf("--explain: %+v, %v", inv, err)
	}
	for _, args := range [][]string{{"--explain", "./prog"}, {"--explain", "--topology"}} {
		if _, err := parseArgs(args, fakeEnv(nil)); err == nil {
			t.Errorf("parseArgs(%q) accepted", args)
		}
	}
}

// gorun --explain shows the thresholds of the tuning file GORUN_TUNING names, and the
// environment over them.
func TestExplainTuningFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tuning.json")
	f := tuning.File{Machine: "the test machine", Params: tuning.Params{ShmEager: 4096, SockEager: 8192, CMA: "off"}}
	if err := tuning.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"file", map[string]string{"GORUN_TUNING": path},
			[]string{"from " + path, "the test machine", "shm eager up to 4 KiB", "sockets eager up to 8 KiB", "single copy: off",
				"SplitType on this machine", "  socket: ", "  numa: ", "  l3: "}},
		{"environment over file", map[string]string{"GORUN_TUNING": path, "GORUN_SHM_EAGER": "2048"},
			[]string{"shm eager up to 2 KiB", "sockets eager up to 8 KiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run([]string{"--explain"}, fakeEnv(tc.env), nil, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
	var stdout, stderr bytes.Buffer
	missing := map[string]string{"GORUN_TUNING": filepath.Join(t.TempDir(), "none.json")}
	if code := run([]string{"--explain"}, fakeEnv(missing), nil, &stdout, &stderr); code != 1 || stderr.Len() == 0 {
		t.Errorf("a missing tuning file: exit %d, stderr %q", code, stderr.String())
	}
}
