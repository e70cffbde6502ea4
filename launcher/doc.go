// Package launcher starts and supervises the ranks of a gorun job: N copies
// of one program, each a child process of the caller, on this machine or,
// through a launch command such as ssh, on other hosts (see "Other hosts").
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
//	                      or put on a command line (a remote rank reads it
//	                      from standard input, see below). A rank removes it
//	                      from its environment once read (pmi.TakeJobKey), so
//	                      the processes it starts do not inherit it
//	GORUN_LOCAL_RANK=r    the rank among the ranks on its host, and how many
//	GORUN_LOCAL_SIZE=n    ranks that host has (r and N without Hosts)
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
//
// # Other hosts
//
// With Config.Hosts the ranks are placed in blocks over the hosts: the first
// host's slots fill first (Hosts a:4,b:4 puts ranks 0-3 on a, 4-7 on b), and
// the PMI key-value space serves PMI_process_mapping for that layout
// ("(vector,(0,2,4))"), so ranks know which of them share a node. Ranks on
// the host named "localhost" or as this machine start as above. Every other
// rank starts as
//
//	LAUNCH-CMD env VAR=value ... PROGRAM ARGS
//
// where LAUNCH-CMD is Config.LaunchCmd with {host} replaced (default
// "ssh -o BatchMode=yes {host}"; for ssh and rsh, which hand the remote
// shell one string, the words after it are shell-quoted). PROGRAM must exist
// at the same absolute path on that host: a package Run builds lands in a
// temporary directory on this machine only. ssh forwards no environment, so
// the variables travel on the command line: gorun's own GORUN_* settings
// (GORUN_TRANSPORT, GORUN_IFACE, ...), GOMAXPROCS if set, Config.Env, then
//
//	PMI_PORT=host:port    the job's PMI server over TCP
//	PMI_ID=r              the rank, as PMI_PORT ranks announce themselves
//	PMI_RANK=r, PMI_SIZE=N, GORUN_JOBID=<id>, GORUN_LOCAL_RANK, GORUN_LOCAL_SIZE
//	GORUN_WATCH=host:port the rank connects there and kills itself when the
//	                      connection closes: when the job ends, normally or
//	                      not, or the launcher dies
//	GORUN_JOB_KEY=stdin   the key is the first line of the launch command's
//	                      standard input (a command line would show it in
//	                      ps)
//
// The launcher listens for PMI_PORT and GORUN_WATCH on every interface, or
// on GORUN_IFACE's first address; the host it advertises is Config.PMIAddr,
// else GORUN_IFACE's address, else the local address of the route to the
// rank's host, else this machine's first non-loopback address. Anyone who
// can reach those ports may connect, so a remote rank proves it holds the
// key on both: its PMI initack carries an HMAC of its rank under the key
// (pmi.PortToken), its watch line another (pmi.WatchToken). A connection
// that does not is closed and counts for nothing; at most 64 connections per
// port may be waiting to authenticate, each for a few seconds. The key
// itself never crosses either connection. (Both tokens are the same every
// time for a rank of a job: one seen on the network is good for that rank
// of that job only, and a rank already joined is not served twice.)
//
// For a remote rank the process supervised is its launch command: its
// output is forwarded like a local rank's, its exit status (ssh passes the
// remote command's on, and exits 255 when it fails itself or the command is
// killed by a signal) decides the rank's, and ending the job sends it
// SIGTERM, then SIGKILL. ssh does not pass signals on to the remote command:
// a remote rank instead ends when the launcher closes its watch connection,
// once every launch command has been reaped or the grace period is over.
// Stdin, if any, goes to rank 0 wherever it runs (ssh forwards it).
package launcher
