package main

import (
	"fmt"
	"io"

	"github.com/gorun-hpc/gorun/launcher"
	"github.com/gorun-hpc/gorun/topology"
)

// printTopology is `gorun --topology`: it writes this machine and, when -n
// was given, where inv.cfg.N ranks would go (what launcher.Run would apply),
// as text or, with --json, as JSON.
func printTopology(w io.Writer, inv invocation) error {
	if !inv.place {
		m, err := topology.Discover()
		if err != nil {
			return fmt.Errorf("discover topology: %w", err)
		}
		if inv.json {
			return m.WriteJSON(w, nil)
		}
		return m.WriteText(w, nil)
	}
	p, err := launcher.Place(inv.cfg.N, inv.cfg.BindTo, inv.cfg.MapBy)
	if err != nil {
		return err
	}
	if inv.json {
		return p.Machine.WriteJSON(w, p.Ranks)
	}
	if err := p.Machine.WriteText(w, p.Ranks); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w, placementSummary(p)); err != nil {
		return fmt.Errorf("write topology: %w", err)
	}
	return nil
}

// placementSummary is the line under the ranks' placements that says how
// they were chosen, e.g. "Placement: 4 ranks on 2 usable CPUs, --bind-to
// none (default), --map-by core; oversubscribed: ranks are not bound".
func placementSummary(p *launcher.Placement) string {
	n, usable := len(p.Ranks), p.Machine.UsableCPUs()
	s := fmt.Sprintf("Placement: %d ranks on %d usable CPUs, --bind-to %s", n, usable, p.BindTo)
	if p.Defaulted {
		s += " (default)"
	}
	s += ", --map-by " + p.MapBy.String()
	if topology.Oversubscribed(n, usable) {
		s += "; oversubscribed"
	}
	if !p.Bound() {
		s += ": ranks are not bound, each may run on every allowed CPU"
	}
	return s
}
