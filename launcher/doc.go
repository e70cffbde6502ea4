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
