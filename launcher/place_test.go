package launcher

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/internal/syncbuf"
	"github.com/gorun-hpc/gorun/topology"
	"golang.org/x/sys/unix"
)

// rankPlace is what testdata/placement reported for one rank.
type rankPlace struct {
	cpus       topology.CPUSet // Cpus_allowed_list
	gomaxprocs int             // runtime.GOMAXPROCS(0)
	local      string          // GORUN_LOCAL_RANK/GORUN_LOCAL_SIZE
	gorunCPUs  string          // GORUN_CPUS
}

var placeLine = regexp.MustCompile(`(?m)^place rank=(\d+) cpus=(\S+) gomaxprocs=(\d+) local=(\S*) gorun_cpus=(\S*)$`)

// runPlacement runs cfg with testdata/placement and returns each rank's report.
func runPlacement(t *testing.T, cfg Config) []rankPlace {
	t.Helper()
	cfg.Program = bin.placement
	j, err := runJob(t, cfg, 20*time.Second)
	if err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, j.stderr)
	}
	got := make([]rankPlace, cfg.N)
	seen := 0
	for _, m := range placeLine.FindAllStringSubmatch(j.stdout.String(), -1) {
		r, _ := strconv.Atoi(m[1])
		cpus, err := topology.ParseCPUSet(m[2])
		if err != nil || r >= cfg.N {
			t.Fatalf("bad line %q: %v", m[0], err)
		}
		g, _ := strconv.Atoi(m[3])
		got[r] = rankPlace{cpus: cpus, gomaxprocs: g, local: m[4], gorunCPUs: m[5]}
		seen++
	}
	if seen != cfg.N {
		t.Fatalf("%d place lines for %d ranks:\n%s", seen, cfg.N, j.stdout)
	}
	return got
}

// mustPlace is what Run will apply for n ranks.
func mustPlace(t *testing.T, n int, bind topology.BindTo) *Placement {
	t.Helper()
	p, err := Place(n, bind, topology.MapCore)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Bound ranks start on their own cores, and their Go runtime knows it.
func TestBindCore(t *testing.T) {
	for _, tc := range []struct {
		name string
		bind topology.BindTo
	}{{"explicit", topology.BindCore}, {"default", topology.BindDefault}} {
		t.Run(tc.name, func(t *testing.T) {
			harness.CheckLeaks(t)
			want := mustPlace(t, 2, tc.bind)
			if !want.Bound() {
				t.Skipf("2 ranks oversubscribe the %d usable CPUs: the default binds nothing (see TestUnbound)",
					want.Machine.UsableCPUs())
			}
			got := runPlacement(t, Config{N: 2, BindTo: tc.bind})
			for r, g := range got {
				w := want.Ranks[r]
				if !g.cpus.Equal(w.CPUs) || g.gorunCPUs != w.CPUs.String() || g.gomaxprocs != w.GOMAXPROCS {
					t.Errorf("rank %d: CPUs %s, GORUN_CPUS %q, GOMAXPROCS %d; want CPUs %s, GOMAXPROCS %d",
						r, g.cpus, g.gorunCPUs, g.gomaxprocs, w.CPUs, w.GOMAXPROCS)
				}
				if g.cpus.Count() == 1 && g.gomaxprocs != 1 {
					t.Errorf("rank %d: one CPU but GOMAXPROCS %d", r, g.gomaxprocs)
				}
				if want := fmt.Sprintf("%d/2", r); g.local != want {
					t.Errorf("rank %d: local rank/size %s, want %s", r, g.local, want)
				}
			}
			if !want.Ranks[0].CPUs.Intersect(want.Ranks[1].CPUs).IsEmpty() {
				t.Logf("not checking that the ranks' CPUs are disjoint: the allowed CPUs (%s) form one core",
					want.Machine.Allowed)
			} else if !got[0].cpus.Intersect(got[1].cpus).IsEmpty() {
				t.Errorf("ranks share CPUs: %s and %s", got[0].cpus, got[1].cpus)
			}
		})
	}
}

// Unbound ranks keep the launcher's CPUs, and GOMAXPROCS is their share.
func TestUnbound(t *testing.T) {
	usable := mustPlace(t, 1, topology.BindNone).Machine.UsableCPUs()
	for _, tc := range []struct {
		name string
		n    int
		bind topology.BindTo
	}{
		{"bind none", 2, topology.BindNone},
		{"oversubscribed by default", usable + 1, topology.BindDefault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.n > 64 {
				t.Skipf("oversubscribing %d CPUs takes %d rank processes; too many for a test", usable, tc.n)
			}
			harness.CheckLeaks(t)
			all := processMask(t)
			if p := mustPlace(t, tc.n, tc.bind); p.Bound() {
				t.Fatalf("Place(%d, %v) binds to %v", tc.n, tc.bind, p.BindTo)
			}
			share := max(1, usable/tc.n)
			for r, g := range runPlacement(t, Config{N: tc.n, BindTo: tc.bind}) {
				if !g.cpus.Equal(all) || g.gorunCPUs != "" || g.gomaxprocs != share {
					t.Errorf("rank %d: CPUs %s, GORUN_CPUS %q, GOMAXPROCS %d; want CPUs %s (unbound), \"\", %d",
						r, g.cpus, g.gorunCPUs, g.gomaxprocs, all, share)
				}
				if want := fmt.Sprintf("%d/%d", r, tc.n); g.local != want {
					t.Errorf("rank %d: local rank/size %s, want %s", r, g.local, want)
				}
			}
		})
	}
}

// A GOMAXPROCS the user set wins over the placement's; an empty one does not.
func TestUserGOMAXPROCSWins(t *testing.T) {
	share := mustPlace(t, 2, topology.BindDefault).Ranks[0].GOMAXPROCS
	for _, tc := range []struct {
		name   string
		parent string // GOMAXPROCS in the launcher's environment
		env    []string
		want   int
	}{
		{"Config.Env", "", []string{"GOMAXPROCS=3"}, 3},
		{"launcher environment", "3", nil, 3},
		{"Config.Env overrides the environment", "5", []string{"GOMAXPROCS=3"}, 3},
		{"empty counts as unset", "", []string{"GOMAXPROCS="}, share},
	} {
		t.Run(tc.name, func(t *testing.T) {
			harness.CheckLeaks(t)
			t.Setenv("GOMAXPROCS", tc.parent) // set only in the environment ranks inherit
			for r, g := range runPlacement(t, Config{N: 2, Env: tc.env}) {
				if g.gomaxprocs != tc.want {
					t.Errorf("rank %d: GOMAXPROCS %d, want %d", r, g.gomaxprocs, tc.want)
				}
			}
		})
	}
}

func TestUserGOMAXPROCS(t *testing.T) {
	for _, tc := range []struct {
		parent string // "-" for unset
		env    []string
		want   bool
	}{
		{"-", nil, false},
		{"", nil, false},
		{"2", nil, true},
		{"-", []string{"GOMAXPROCS=4"}, true},
		{"-", []string{"GOMAXPROCS=4", "GOMAXPROCS="}, false},
		{"2", []string{"GOMAXPROCS="}, false},
		{"-", []string{"XGOMAXPROCS=4", "GOMAXPROCSX=1"}, false},
	} {
		lookup := func(string) (string, bool) { return tc.parent, tc.parent != "-" }
		if got := userGOMAXPROCS(lookup, tc.env); got != tc.want {
			t.Errorf("parent %q, env %q: %v, want %v", tc.parent, tc.env, got, tc.want)
		}
	}
}

// place resolves the default binding and turns sets into masks.
func TestPlaceResolution(t *testing.T) {
	all, _ := topology.ParseCPUSet("0-3")
	core0, _ := topology.ParseCPUSet("0,2")
	core1, _ := topology.ParseCPUSet("1,3")
	m := &topology.Machine{CPUs: all, Allowed: all, LineSize: 64,
		Packages: []topology.Package{{CPUs: all, Cores: []topology.Core{{ID: 0, CPUs: core0}, {ID: 1, CPUs: core1}}}}}
	for _, tc := range []struct {
		n         int
		bind      topology.BindTo
		want      topology.BindTo
		defaulted bool
		masks     string // each rank's mask, space separated; "" when unbound
	}{
		{2, topology.BindDefault, topology.BindCore, true, "0,2 1,3"},
		{5, topology.BindDefault, topology.BindNone, true, ""},
		{2, topology.BindNone, topology.BindNone, false, ""},
		{3, topology.BindCore, topology.BindCore, false, "0,2 1,3 0,2"},
		{2, topology.BindNUMA, topology.BindNUMA, false, "0-3 0-3"},
	} {
		p, err := place(m, tc.n, tc.bind, topology.MapCore)
		if err != nil {
			t.Fatal(err)
		}
		masks, err := p.masks()
		if err != nil {
			t.Fatal(err)
		}
		var sets []string
		for _, u := range masks {
			sets = append(sets, topology.CPUSetFromUnix(u).String())
		}
		if p.BindTo != tc.want || p.Defaulted != tc.defaulted || p.Bound() != (tc.masks != "") ||
			strings.Join(sets, " ") != tc.masks || len(p.Ranks) != tc.n {
			t.Errorf("%d ranks, %v: %v (defaulted %v), masks %q; want %v (%v), %q",
				tc.n, tc.bind, p.BindTo, p.Defaulted, sets, tc.want, tc.defaulted, tc.masks)
		}
	}
	if _, err := place(m, 0, topology.BindCore, topology.MapCore); err == nil {
		t.Error("place 0 ranks: no error")
	}
	for _, cfg := range []Config{
		{N: 1, Program: "p", BindTo: topology.BindNUMA + 1},
		{N: 1, Program: "p", MapBy: -1},
	} {
		if _, err := cfg.withDefaults(); err == nil {
			t.Errorf("Config %+v: no error", cfg)
		}
	}
}

// A rank that cannot be bound fails the job as a setup error; the ranks
// already started are ended, and the spawner's thread keeps no rank's mask
// (harness.CheckLeaks).
func TestBindFails(t *testing.T) {
	harness.CheckLeaks(t)
	cfg, err := Config{N: 2, Program: bin.sleeper, BindTo: topology.BindCore}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Stdout, cfg.Stderr = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	j, err := newJob(cfg, bin.sleeper)
	if err != nil {
		t.Fatal(err)
	}
	const absent = len(unix.CPUSet{})*64 - 1 // the last CPU a mask can name
	if j.place.Machine.CPUs.Contains(absent) {
		t.Skipf("CPU %d is online: no CPU to fail binding to", absent)
	}
	var bad unix.CPUSet
	bad.Set(absent)
	j.masks[1] = &bad
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	je := jobError(t, j.run(ctx))
	want := fmt.Sprintf("rank 1: bind to CPUs %d: sched_setaffinity", absent)
	if je.Cause != CauseSetup || !errors.Is(je, syscall.EINVAL) || !strings.Contains(je.Error(), want) || je.Terminated != 1 {
		t.Errorf("JobError %q (cause %v, %d terminated), want a setup error %q (EINVAL), rank 0 terminated",
			je, je.Cause, je.Terminated, want)
	}
}

// threadMask binds the calling thread for the call only, and refuses to
// start an unbound rank on a thread it could not restore.
func TestThreadMask(t *testing.T) {
	all := processMask(t)
	one, _ := topology.NewCPUSet(all.First())
	mask, _ := one.Unix()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tm := newThreadMask(true)
		done <- checkThreadMask(tm, &mask, one.String(), all.String())
		// Put the mask back, as spawn would, and hand the thread back only
		// then; else exit locked so that the runtime ends (or, for the main
		// thread, parks) it.
		if unix.SchedSetaffinity(0, &tm.orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// checkThreadMask runs tm through a bind and restore, then through a bind
// it cannot undo. It must run on a locked thread whose mask is all.
func checkThreadMask(tm *threadMask, mask *unix.CPUSet, one, all string) error {
	self := fmt.Sprintf("/proc/self/task/%d/status", unix.Gettid())
	var during string
	if err := tm.start(mask, func() (err error) { during, err = cpusAllowed(self); return err }); err != nil {
		return err
	}
	after, err := cpusAllowed(self)
	switch {
	case err != nil:
		return err
	case during != one || after != all || tm.dirty:
		return fmt.Errorf("mask %s during the call, %s after (dirty %v); want %s, %s", during, after, tm.dirty, one, all)
	}
	tm.origErr = errors.New("unknown") // as if the mask could not be read
	if err := tm.start(mask, func() error { return nil }); err != nil || !tm.dirty {
		return fmt.Errorf("bind without a known mask: %v, dirty %v; want nil, true", err, tm.dirty)
	}
	if err := tm.start(nil, func() error { return nil }); err == nil || !strings.Contains(err.Error(), "not restored: unknown") {
		return fmt.Errorf("unbound start on an unrestored thread: %v, want an error naming the cause", err)
	}
	return nil
}
