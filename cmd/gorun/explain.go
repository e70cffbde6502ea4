package main

import (
	"fmt"
	"io"

	"github.com/gorun-hpc/gorun/rank"
	"github.com/gorun-hpc/gorun/topology"
	"github.com/gorun-hpc/gorun/tuning"
)

// printExplain is `gorun --explain`: the protocol each size takes, with the thresholds a rank
// started from this environment would use (environment, then tuning file, then defaults),
// then what comm's SplitType groups by on this machine.
func printExplain(w io.Writer, lookupEnv func(string) (string, bool)) error {
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }
	t, err := tuning.Resolve(tuning.Params{}, getenv)
	if err != nil {
		return err
	}
	if err := rank.Explain(w, t, rank.ExplainSizes); err != nil {
		return err
	}
	m, err := topology.Discover()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "SplitType on this machine (node: every rank of the node)")
	for _, line := range m.DescribeSplits() {
		fmt.Fprintf(w, "  %s\n", line)
	}
	return nil
}
