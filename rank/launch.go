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
//     abstract Unix socket named after the job.
//  3. Nothing: a world of one.

// rendezvousSpec describes the rendezvous of a job started without PMI.
type rendezvousSpec struct {
	launcher   string
	rank, size int
	job        string // names the job: its key-value space, the socket
	network    string // "tcp" or "unix"
	addr       string // where rank 0 serves
	listen     string // what rank 0 listens on
}

// joinJob connects to the job's key-value service, serving it first if this is rank 0 of a
// job that uses gorun's own rendezvous. It returns pmi.ErrNoLauncher if there is no job. key
// is the job's secret if the launcher passed one: a rank joining over TCP proves with it that
// it is the rank it claims (pmi.PortToken).
func joinJob(getenv func(string) string, key []byte, timeout time.Duration) (*pmi.Client, *rendezvous, error) {
	c, err := pmi.ConnectWithKey(getenv, key)
	if !errors.Is(err, pmi.ErrNoLauncher) {
		return c, nil, err
	}
	spec, err := findRendezvous(getenv)
	if err != nil {
		return nil, nil, err
	}
	var srv *rendezvous
	if spec.rank == 0 {
		if srv, err = serveRendezvous(spec); err != nil {
			return nil, nil, err
		}
	}
	conn, err := dialRendezvous(spec, timeout)
	if err == nil {
		c, err = pmi.Join(conn, spec.rank, "")
	}
	if err != nil {
		if srv != nil {
			srv.close(0)
		}
		return nil, nil, fmt.Errorf("%s rendezvous at %s %s: %w", spec.launcher, spec.network, spec.addr, err)
	}
	return c, srv, nil
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
		if ports := getenv("SLURM_STEP_RESV_PORTS"); ports != "" {
			port, perr := strconv.Atoi(strings.FieldsFunc(ports, func(r rune) bool { return r == '-' || r == ',' })[0])
			host := firstHost(getenv("SLURM_STEP_NODELIST"))
			if perr == nil && host != "" {
				s.network, s.addr, s.listen = "tcp", net.JoinHostPort(host, strconv.Itoa(port)), ":"+strconv.Itoa(port)
			}
		}
	default:
		return s, pmi.ErrNoLauncher
	}
	if err != nil {
		return s, err
	}
	if v := getenv("GORUN_RENDEZVOUS"); v != "" {
		_, port, perr := net.SplitHostPort(v)
		if perr != nil {
			return s, fmt.Errorf("GORUN_RENDEZVOUS=%q: want host:port", v)
		}
		s.network, s.addr, s.listen = "tcp", v, ":"+port
	}
	if s.network == "" {
		if !allLocal {
			return s, fmt.Errorf("%s started ranks on several nodes and offers no key-value service: set GORUN_RENDEZVOUS=host:port (rank 0's node, a free port) for every rank", s.launcher)
		}
		s.network = "unix"
		s.addr = "@gorun-rdv-" + unsafeNameChars.ReplaceAllString(s.job, "_")
		s.listen = s.addr
	}
	return s, nil
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

func dialRendezvous(s rendezvousSpec, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		conn, err := net.DialTimeout(s.network, s.addr, time.Until(deadline))
		if err == nil {
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
	ended  chan struct{} // one per rank connection that ended
	size   int
	wg     sync.WaitGroup
}

func serveRendezvous(s rendezvousSpec) (*rendezvous, error) {
	ln, err := net.Listen(s.network, s.listen)
	if err != nil {
		return nil, fmt.Errorf("%s rendezvous: serve on %s: %w", s.launcher, s.listen, err)
	}
	srv, err := pmi.NewServer(pmi.ServerConfig{Size: s.size, KVSName: "gorun_" + unsafeNameChars.ReplaceAllString(s.job, "_")})
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rendezvous{ln: ln, cancel: cancel, ended: make(chan struct{}, s.size), size: s.size}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		srv.ServePort(ctx, ln, func(_ int, end pmi.End, _ error) {
			if end.Kind == pmi.EndAborted {
				// A rank asked to take the job down. This launcher cannot be told, so the
				// rank that serves the job's rendezvous ends with the same status: the
				// launcher then ends the job, and every peer sees this rank lost.
				os.Exit(end.ExitCode)
			}
			r.ended <- struct{}{}
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
