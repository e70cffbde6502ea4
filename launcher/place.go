package launcher

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gorun-hpc/gorun/topology"
	"golang.org/x/sys/unix"
)

// Placement is where the ranks of a job go on this machine: what Run
// applies, and what `gorun --topology -n N` prints. It is plain data, safe
// for concurrent reads.
type Placement struct {
	// Machine is this machine, as topology.Discover found it.
	Machine *topology.Machine
	// BindTo is the binding in force, never topology.BindDefault: a default
	// request has been resolved to BindCore or BindNone (see
	// topology.DefaultBind). Defaulted says it was.
	BindTo    topology.BindTo
	Defaulted bool
	MapBy     topology.MapBy
	// Ranks holds each rank's CPU set and GOMAXPROCS, indexed by rank. With
	// BindNone every set is all the allowed CPUs and Run applies none of
	// them; GOMAXPROCS is still each rank's share of the usable CPUs.
	Ranks []topology.Placement
}

// Bound reports whether Run binds each rank to its CPU set.
func (p *Placement) Bound() bool { return p.BindTo != topology.BindNone }

// Place discovers this machine and places n ranks on it with bind and
// mapBy, as Run does for Config.N, Config.BindTo and Config.MapBy.
func Place(n int, bind topology.BindTo, mapBy topology.MapBy) (*Placement, error) {
	m, err := topology.Discover()
	if err != nil {
		return nil, fmt.Errorf("discover topology: %w", err)
	}
	return place(m, n, bind, mapBy)
}

// place is Place on a given machine.
func place(m *topology.Machine, n int, bind topology.BindTo, mapBy topology.MapBy) (*Placement, error) {
	p := &Placement{Machine: m, BindTo: bind, MapBy: mapBy}
	if bind == topology.BindDefault {
		p.BindTo, p.Defaulted = topology.DefaultBind(m, n), true
	}
	var err error
	if p.Ranks, err = topology.Place(m, n, p.BindTo, mapBy); err != nil {
		return nil, err
	}
	return p, nil
}

// masks returns each rank's affinity mask, indexed by rank, or nil when the
// ranks are not bound. It fails if a set does not fit the kernel's mask.
func (p *Placement) masks() ([]*unix.CPUSet, error) {
	if !p.Bound() {
		return nil, nil
	}
	out := make([]*unix.CPUSet, len(p.Ranks))
	for r, pl := range p.Ranks {
		if pl.CPUs.IsEmpty() {
			return nil, fmt.Errorf("rank %d: empty CPU set", r)
		}
		u, err := pl.CPUs.Unix()
		if err != nil {
			return nil, fmt.Errorf("rank %d: %w", r, err)
		}
		out[r] = &u
	}
	return out, nil
}

// userGOMAXPROCS reports whether the user chose the ranks' GOMAXPROCS: a
// non-empty value in the launcher's environment (lookup) or in env
// (Config.Env, where the last entry wins, as exec keeps it). An empty value
// counts as unset, as it does for the Go runtime.
func userGOMAXPROCS(lookup func(string) (string, bool), env []string) bool {
	v, ok := lookup("GOMAXPROCS")
	if !ok {
		v = ""
	}
	for _, kv := range env {
		if val, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			v = val
		}
	}
	return v != ""
}

// threadMask binds the spawner's OS thread to one rank's CPUs at a time:
// a child inherits the affinity mask of the thread that forks it, so the
// rank starts, and its Go runtime sizes itself, on its own CPUs.
// unix.SchedSetaffinity(0, …) acts on the calling thread only.
//
// It must only be used by the goroutine that locked the thread (job.spawn),
// from before the first rank starts until the last. Invariant between
// calls: when dirty is false the thread's mask is orig, the mask every
// thread of the process has; when dirty is true it may be a rank's, and the
// thread must never run another goroutine (spawn then lets it end locked).
type threadMask struct {
	orig       unix.CPUSet
	origErr    error // why orig is unknown (then every bind leaves dirty set)
	restoreErr error // why the last restore failed
	dirty      bool
}

// newThreadMask reads the calling thread's mask if bind is true (some rank
// will be bound). Failing to read it is not fatal: ranks can still be
// bound, and the thread is discarded afterwards instead of restored.
func newThreadMask(bind bool) *threadMask {
	t := &threadMask{}
	if bind {
		if err := unix.SchedGetaffinity(0, &t.orig); err != nil {
			t.origErr = fmt.Errorf("sched_getaffinity: %w", err)
		}
	}
	return t
}

// start runs start (which forks a rank) with the thread's mask set to
// mask, then restores the original mask. A nil mask runs start on the
// original mask.
func (t *threadMask) start(mask *unix.CPUSet, start func() error) error {
	if mask == nil {
		if t.dirty {
			return fmt.Errorf("cannot start an unbound rank: the launcher thread's CPU mask was not restored: %w",
				errors.Join(t.origErr, t.restoreErr))
		}
		return start()
	}
	// Set before the call: even a failed sched_setaffinity is not trusted
	// to have left the mask alone.
	t.dirty = true
	defer t.restore()
	if err := unix.SchedSetaffinity(0, mask); err != nil {
		return fmt.Errorf("bind to CPUs %s: sched_setaffinity: %w", topology.CPUSetFromUnix(mask), err)
	}
	return start()
}

// restore puts the original mask back, clearing dirty on success. On
// failure dirty stays set; ranks are still correctly bound (each sets its
// own mask), and spawn discards the thread at the end.
func (t *threadMask) restore() {
	if t.origErr != nil {
		return
	}
	if err := unix.SchedSetaffinity(0, &t.orig); err != nil {
		t.restoreErr = fmt.Errorf("restore: sched_setaffinity: %w", err)
		return
	}
	t.dirty = false
}
