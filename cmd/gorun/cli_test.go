package main

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/launcher"
	"github.com/gorun-hpc/gorun/topology"
)

func fakeEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseArgs(t *testing.T) {
	env := fakeEnv(map[string]string{"HOME": "/root", "EMPTY": ""})
	for _, tc := range []struct {
		name string
		args []string
		want launcher.Config
	}{
		{"defaults", []string{"./prog"},
			launcher.Config{N: 1, Program: "./prog", Args: []string{}, Grace: time.Second}},
		{"flags end at the program", []string{"-n", "4", "./prog", "-n", "5", "--tag-output", "x"},
			launcher.Config{N: 4, Program: "./prog", Args: []string{"-n", "5", "--tag-output", "x"}, Grace: time.Second}},
		{"double dash", []string{"--n=2", "--", "-weird-name", "a"},
			launcher.Config{N: 2, Program: "-weird-name", Args: []string{"a"}, Grace: time.Second}},
		{"every flag", []string{"-n", "8", "--tag-output", "--timeout", "5m", "--grace", "3s",
			"-x", "HOME", "-x", "A=b=c", "-x", "EMPTY", "-x", "Z=", "--bind-to", "numa", "--map-by=l3",
			"bin/solver", "-grid", "4096"},
			launcher.Config{N: 8, Program: "bin/solver", Args: []string{"-grid", "4096"},
				Env: []string{"HOME=/root", "A=b=c", "EMPTY=", "Z="}, TagOutput: true,
				Timeout: 5 * time.Minute, Grace: 3 * time.Second,
				BindTo: topology.BindNUMA, MapBy: topology.MapL3}},
		{"bind none", []string{"--bind-to", "none", "--map-by", "core", "p"},
			launcher.Config{N: 1, Program: "p", Args: []string{}, Grace: time.Second, BindTo: topology.BindNone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseArgs(tc.args, env)
			if err != nil {
				t.Fatal(err)
			}
			if got.topology || !reflect.DeepEqual(got.cfg, tc.want) {
				t.Errorf("parseArgs(%q) =\n%+v, want\n%+v", tc.args, got, tc.want)
			}
		})
	}
}

func TestParseArgsTopology(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want invocation
	}{
		{[]string{"--topology"},
			invocation{topology: true, cfg: launcher.Config{N: 1}}},
		{[]string{"--topology", "-n", "1"},
			invocation{topology: true, place: true, cfg: launcher.Config{N: 1}}},
		{[]string{"--json", "-n", "4", "--topology", "--bind-to", "l3", "--map-by", "numa"},
			invocation{topology: true, json: true, place: true,
				cfg: launcher.Config{N: 4, BindTo: topology.BindL3, MapBy: topology.MapNUMA}}},
	} {
		got, err := parseArgs(tc.args, fakeEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseArgs(%q) =\n%+v, want\n%+v", tc.args, got, tc.want)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	env := fakeEnv(nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no PROGRAM"},
		{[]string{"-n", "2"}, "no PROGRAM"},
		{[]string{"-n", "0", "p"}, "at least one rank"},
		{[]string{"-n", "-3", "p"}, "at least one rank"},
		{[]string{"-n", "9223372036854775807", "p"}, "-n 9223372036854775807: at most 1048576 ranks"},
		{[]string{"-n", "99999999999999999999", "p"}, "invalid value"},
		{[]string{"--topology", "-n", "1048577"}, "at most 1048576 ranks"},
		{[]string{"-n", "two", "p"}, "invalid value"},
		{[]string{"--bogus", "p"}, "not defined"},
		{[]string{"-x", "UNSET_VAR", "p"}, "UNSET_VAR is not set"},
		{[]string{"-x", "=v", "p"}, "want VAR or VAR=value"},
		{[]string{"--timeout", "-1s", "p"}, "--timeout"},
		{[]string{"--grace", "0", "p"}, "--grace"},
		{[]string{"--bind-to", "socket", "p"}, "want core, l3, numa or none"},
		{[]string{"--map-by", "none", "p"}, "want core, l3 or numa"},
		{[]string{"--json", "p"}, "--json needs --topology"},
		{[]string{"--topology", "p"}, "--topology runs no program"},
		{[]string{"--topology", "-n", "0"}, "at least one rank"},
	} {
		if _, err := parseArgs(tc.args, env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseArgs(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := parseArgs([]string{"--help"}, env); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}

// Every flag the FlagSet knows is documented in usage, with an example.
func TestUsageDocumentsEveryFlag(t *testing.T) {
	var o options
	newFlagSet(&o).VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		if n := strings.Count(usage, dash+f.Name+" "); n < 2 {
			t.Errorf("usage mentions %s%s %d time(s), want a description and an example", dash, f.Name, n)
		}
	})
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, fakeEnv(nil), nil, &stdout, &stderr); code != 0 || stdout.String() != usage {
		t.Errorf("--help: exit %d, stdout %q", code, stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"-n"}, fakeEnv(nil), nil, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "gorun --help") || stdout.Len() != 0 {
		t.Errorf("bad flag: exit %d, stderr %q", code, stderr.String())
	}
}
