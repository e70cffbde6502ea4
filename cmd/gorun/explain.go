package main

import (
	"io"

	"github.com/gorun-hpc/gorun/rank"
	"github.com/gorun-hpc/gorun/tuning"
)

// printExplain is `gorun --explain`: the protocol each size takes, with the thresholds a rank
// started from this environment would use (environment, then tuning file, then defaults).
func printExplain(w io.Writer, lookupEnv func(string) (string, bool)) error {
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }
	t, err := tuning.Resolve(tuning.Params{}, getenv)
	if err != nil {
		return err
	}
	return rank.Explain(w, t, rank.ExplainSizes)
}
