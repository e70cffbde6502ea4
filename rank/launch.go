package rank

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/internal/pmi"
)

// How a rank finds its job (checked in this order):
//
//  1. PMI_FD, or PMI_PORT with PMI_ID: the launcher's own PMI service (gorun, MPICH's Hydra,
//     srun --mpi=pmi2).
//  2. OMPI_COMM_WORLD_RANK (Open MPI's mpirun) or SLURM_PROCID without PMI (plain srun): these
//     offer no key-value service, so rank 0 serves one — gorun's PMI server, in the rank
//     itself — and every rank, rank 0 included, joins it as a PMI_PORT rank would. Rank 0's
//     address is GORUN_RENDEZVOUS (host:port reachable from every node) if set; else, under
//     Slurm, the first of the step's reserved ports (SLURM_STEP_RESV_PORTS, with MpiParams=ports
//     in slurm.conf) on the step's first node; else, when every rank is on one node, an
//     abstract Unix socket named after the job. Rank 0 listens on GORUN_RENDEZVOUS's address
//     only; on a Slurm port, on every interface. Every connection authenticates (below).
//  3. Nothing: a world of one.

// rendezvousSpec describes the rendezvous of a job started without PMI.
type rendezvousSpec struct {
	launcher   string
	rank, size int
	job        string // names the job: its key-value space, the socket, Auth.Job
	network    string // "tcp" or "unix"
	addr       string // where rank 0 serves
	listen     string // what rank 0 listens on
}

// gorun's own rendezvous is reachable by strangers: an abstract Unix socket by any local
// user, a TCP port by any host. So both ends authenticate (pmi.Auth): over the Unix socket
// each checks that the other is this user (SO_PEERCRED); over TCP, where no such fact
// exists, the rank and rank 0 prove to each other that they hold a secret — GORUN_JOB_KEY
// if the user passes one to every rank (mpirun -x GORUN_JOB_KEY), else the user's cookie
// file (pmi.Cookie: $GORUN_COOKIE_FILE or $HOME/.gorun/cookie, the same file on every
// node). The key for the ranks' own connections then comes out of that exchange: derived
// from the secret, or handed over the Unix socket. It never enters the key-value space.

// joinJobKey connects to the job's key-value service, serving it first if this is rank 0
// of a job that uses gorun's own rendezvous. It returns pmi.ErrNoLauncher if there is no
// job. key is the job's secret if the launcher or the user passed one (GORUN_JOB_KEY): a
// rank joining the launcher's service over TCP proves with it that it is the rank it claims
// (pmi.PortToken), and so does a rank started on another host on its watch connection
// (GORUN_WATCH), which joinJobKey opens. The key returned is the one the ranks'
// connections use: key under the launcher's service (nil if none was passed: the caller
// makes one), the one Auth's exchange yields under gorun's own rendezvous.
func joinJobKey(getenv func(string) string, key []byte, timeout time.Duration) (*pmi.Client, *rendezvous, []byte, error) {
	c, err := pmi.ConnectWithKey(getenv, key)
	if err == nil {
		if addr := getenv("GORUN_WATCH"); addr != "" {
			if err := watch(addr, c.Rank(), key); err != nil {
				c.Close()
				return nil, nil, nil, err
			}
		}
		return c, nil, key, nil
	}
	if !errors.Is(err, pmi.ErrNoLauncher) {
		return nil, nil, nil, err
	}
	spec, err := findRendezvous(getenv)
	if err != nil {
		return nil, nil, nil, err
	}
	auth, err := rendezvousAuth(getenv, spec, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s rendezvous at %s %s: %w", spec.launcher, spec.network, spec.addr, err)
	}
	var srv *rendezvous
	if spec.rank == 0 {
		if srv, err = serveRendezvous(spec, auth); err != nil {
			return nil, nil, nil, err
		}
	}
	conn, err := dialRendezvous(spec, timeout)
	if err == nil {
		c, key, err = pmi.JoinAuth(conn, spec.rank, auth)
		if err != nil && spec.network == "tcp" {
			err = fmt.Errorf("%w (every rank must hold rank 0's secret: the same GORUN_JOB_KEY, or the same cookie file on every node)", err)
		}
	}
	if err != nil {
		if srv != nil {
			srv.close(0)
		}
		return nil, nil, nil, fmt.Errorf("%s rendezvous at %s %s: %w", spec.launcher, spec.network, spec.addr, err)
	}
	return c, srv, key, nil
}

// rendezvousAuth is how the ranks of spec authenticate: with key if the user passed one,
// else over TCP with the user's cookie, else (a Unix socket) by uid alone.
func rendezvousAuth(getenv func(string) string, spec rendezvousSpec, key []byte) (pmi.Auth, error) {
	a := pmi.Auth{Secret: key, Job: spec.launcher + "/" + spec.job}
	if a.Secret == nil && spec.network == "tcp" {
		cookie, err := pmi.Cookie(getenv)
		if err != nil {
			return a, err
		}
		a.Secret = cookie
	}
	return a, nil
}

// findRendezvous reads the launcher's variables; pmi.ErrNoLauncher if there are none.
func findRendezvous(getenv func(string) string) (rendezvousSpec, error) {
	var s rendezvousSpec
	var allLocal bool
	var err error
	switch {
	case getenv("OMPI_COMM_WORLD_RANK") != "":
		s.launcher = "Open MPI"
		s.rank, s.size, err = rankAndSize(getenv, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")
		s.job = "ompi-" + getenv("OMPI_MCA_ess_base_jobid")
		allLocal = getenv("OMPI_COMM_WORLD_LOCAL_SIZE") == getenv("OMPI_COMM_WORLD_SIZE")
	case getenv("SLURM_PROCID") != "":
		s.launcher = "Slurm"
		s.rank, s.size, err = rankAndSize(getenv, "SLURM_PROCID", "SLURM_NTASKS")
		s.job = "slurm-" + getenv("SLURM_JOB_ID") + "." + getenv("SLURM_STEP_ID")
		allLocal = getenv("SLURM_STEP_NUM_NODES") == "1" || getenv("SLURM_NNODES") == "1"
	default:
		return s, pmi.ErrNoLauncher
	}
	if err != nil {
		return s, err
	}
	switch v := getenv("GORUN_RENDEZVOUS"); {
	case v != "":
		// Rank 0 listens on the address given, and only there.
		if _, err := splitHostPort(v); err != nil {
			return s, fmt.Errorf("GORUN_RENDEZVOUS=%q: %w", v, err)
		}
		s.network, s.addr, s.listen = "tcp", v, v
	case s.launcher == "Slurm" && getenv("SLURM_STEP_RESV_PORTS") != "":
		ports := getenv("SLURM_STEP_RESV_PORTS")
		port, err := firstResvPort(ports)
		if err != nil {
			return s, fmt.Errorf("SLURM_STEP_RESV_PORTS=%q: %w", ports, err)
		}
		host := firstHost(getenv("SLURM_STEP_NODELIST"))
		if host == "" {
			return s, fmt.Errorf("SLURM_STEP_RESV_PORTS=%q but SLURM_STEP_NODELIST names no node", ports)
		}
		// Every interface: the node's name may resolve, on the node itself, to an address
		// the others cannot reach (127.0.1.1). Auth keeps strangers out.
		s.network, s.addr, s.listen = "tcp", net.JoinHostPort(host, strconv.Itoa(port)), ":"+strconv.Itoa(port)
	case !allLocal:
		return s, fmt.Errorf("%s started ranks on several nodes and offers no key-value service: set GORUN_RENDEZVOUS=host:port (rank 0's node, a free port) for every rank", s.launcher)
	default:
		s.network = "unix"
		s.addr = "@gorun-rdv-" + unsafeNameChars.ReplaceAllString(s.job, "_")
		s.listen = s.addr
	}
	return s, nil
}

// splitHostPort splits host:port and checks that port is a number in 1..65535.
func splitHostPort(v string) (int, error) {
	_, p, err := net.SplitHostPort(v)
	if err != nil {
		return 0, errors.New("want host:port")
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("port %q is not in 1..65535", p)
	}
	return port, nil
}

// firstResvPort returns the first port of a Slurm port list ("12000-12003,12010"), which
// must be well formed throughout: comma-separated ports or ranges lo-hi, lo <= hi, all in
// 1..65535.
func firstResvPort(list string) (int, error) {
	first := 0
	for i, item := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, errA := strconv.Atoi(lo)
		b, errB := a, error(nil)
		if isRange {
			b, errB = strconv.Atoi(hi)
		}
		if errA != nil || errB != nil || a < 1 || b > 65535 || a > b {
			return 0, fmt.Errorf("item %d (%q) is not a port or a range of ports in 1..65535", i+1, item)
		}
		if i == 0 {
			first = a
		}
	}
	return first, nil
}

func rankAndSize(getenv func(string) string, rankVar, sizeVar string) (int, int, error) {
	rank, err1 := strconv.Atoi(getenv(rankVar))
	size, err2 := strconv.Atoi(getenv(sizeVar))
	if err1 != nil || err2 != nil || size < 1 || rank < 0 || rank >= size {
		return 0, 0, fmt.Errorf("%s=%q %s=%q: not a rank of a job", rankVar, getenv(rankVar), sizeVar, getenv(sizeVar))
	}
	return rank, size, nil
}

var hostRange = regexp.MustCompile(`^([^\[,]*)\[([0-9]+)`)

// firstHost returns the first host of a Slurm host list ("n[07-09,12],m1" → "n07").
func firstHost(list string) string {
	if m := hostRange.FindStringSubmatch(list); m != nil {
		return m[1] + m[2]
	}
	return strings.Split(list, ",")[0]
}

// dialRendezvous connects to rank 0's rendezvous, trying again until timeout while nobody
// listens there yet. Over a Unix socket it checks that the server is this user's process
// (SO_PEERCRED): another user's that took the name first is refused at once.
func dialRendezvous(s rendezvousSpec, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		conn, err := net.DialTimeout(s.network, s.addr, time.Until(deadline))
		if err == nil {
			if s.network == "unix" {
				if err := pmi.CheckPeerUID(conn, os.Getuid()); err != nil {
					conn.Close()
					return nil, err
				}
			}
			return conn, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(delay)
	}
}

// rendezvous is the key-value service that rank 0 serves for a job whose launcher has none.
// Its goroutines are owned by close.
type rendezvous struct {
	ln     net.Listener
	cancel context.CancelFunc
	ended  chan struct{} // one per rank connection that ended; never more than size
	size   int
	wg     sync.WaitGroup
}

func serveRendezvous(s rendezvousSpec, auth pmi.Auth) (*rendezvous, error) {
	ln, err := net.Listen(s.network, s.listen)
	if err != nil {
		return nil, fmt.Errorf("%s rendezvous: serve on %s: %w", s.launcher, s.listen, err)
	}
	srv, err := pmi.NewServer(pmi.ServerConfig{Size: s.size, KVSName: "gorun_" + unsafeNameChars.ReplaceAllString(s.job, "_"), Auth: &auth})
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rendezvous{ln: ln, cancel: cancel, ended: make(chan struct{}, s.size), size: s.size}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		srv.ServePort(ctx, ln, func(rank int, end pmi.End, _ error) {
			if rank < 0 {
				return // a connection that failed its opening: it never was a rank
			}
			if end.Kind == pmi.EndAborted {
				// A rank asked to take the job down. This launcher cannot be told, so the
				// rank that serves the job's rendezvous ends with the same status: the
				// launcher then ends the job, and every peer sees this rank lost.
				os.Exit(end.ExitCode)
			}
			select {
			case r.ended <- struct{}{}:
			default: // a rank served twice (refused the second time) counts once
			}
		})
	}()
	return r, nil
}

// close stops serving once every rank has finalized, or after timeout.
func (r *rendezvous) close(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for got := 0; got < r.size; got++ {
		select {
		case <-r.ended:
		case <-t.C:
			got = r.size
		}
	}
	r.cancel()
	r.ln.Close()
	r.wg.Wait()
}
