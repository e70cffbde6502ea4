// Command gorun-bench is gorun's benchmark suite: OSU-style micro-benchmarks that run as the
// ranks of a job, and drivers that start their own jobs.
//
//	gorun -n 2 ./cmd/gorun-bench latency          # ranks: OSU's table on stdout
//	gorun -n 8 ./cmd/gorun-bench allreduce -m 4:1M
//	gorun-bench model --plot model.svg            # driver: fits, crossovers, tuning file
//	gorun-bench batch                             # driver: batching's rate and latency
//	gorun-bench plot a.json b.json -o out.svg     # side-by-side plot of saved results
//
// See "gorun-bench --help" and docs/benchmarks.md. The work is done by package bench.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
