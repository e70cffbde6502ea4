// Package launcher starts and supervises the ranks of a gorun job: N copies
// of one program, each a child process of the caller.
//
//	err := launcher.Run(ctx, launcher.Config{N: 4, Program: "./examples/pi"})
//
// Every rank gets an inherited socketpair end to the launcher's PMI-1 server
// (package internal/pmi) and these environment variables, on top of the
// launcher's own environment (minus any inherited PMI_* variables, which
// belong to an outer launcher) and Config.Env:
//
//	PMI_FD=3              the rank's end of its PMI socket
//	PMI_RANK=r            0 <= r < N
//	PMI_SIZE=N
//	GORUN_JOBID=<id>      unique per job; the same in every rank
//	GORUN_JOB_KEY=<hex>   64 hex digits, a fresh random secret per job that
//	                      ranks use to authenticate each other; never printed
//	GORUN_LOCAL_RANK=r    the rank among the ranks on its node; all ranks of
//	GORUN_LOCAL_SIZE=N    a gorun job run on one node, so these are r and N
//	GORUN_CPUS=<list>     the CPUs the rank is bound to ("0-3,8"), or empty
//	                      when it is not bound; for diagnostics
//	GOMAXPROCS=g          the rank's share of CPUs (topology.Placement),
//	                      unless GOMAXPROCS is set non-empty in the
//	                      launcher's environment or in Config.Env
//
// Placement. Run discovers the machine (topology.Discover) and places the
// ranks with Config.BindTo and Config.MapBy (topology.Place; Place shows
// the result without running anything). A bound rank is forked from a
// thread whose CPU mask is the rank's set, so the rank starts on its own
// CPUs and its Go runtime sizes itself to them; nothing else in the
// launcher runs on that thread. By default ranks are bound to a core each
// when they fit the usable CPUs, and not bound when they oversubscribe
// them; GOMAXPROCS is then usable CPUs / ranks (at least 1), so N ranks do
// not run N×CPUs busy Go threads.
//
// Each rank's stdout and stderr are forwarded line by line to Config.Stdout
// and Config.Stderr (optionally tagged "[r] "); Config.Stdin goes to rank 0.
//
// Run supervises: when a rank exits non-zero, is killed by a signal or calls
// PMI abort, when Config.Timeout passes or when ctx is done, every rank still
// running gets SIGTERM, then SIGKILL after Config.Grace. Run returns once
// every rank has been reaped, with nil only if all exited 0, and otherwise a
// *JobError that names the rank and the reason. Ranks also get
// PR_SET_PDEATHSIG=SIGKILL, so they die with the launcher even if it is
// killed itself.
package launcher
