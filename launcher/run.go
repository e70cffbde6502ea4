package launcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/internal/pmi"
	"github.com/gorun-hpc/gorun/internal/shmname"
	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds how long Run waits, after the last rank was reaped,
// for the ranks' output pipes and PMI sockets to close. They close at once
// unless a process the rank started (and that outlived it) inherited them;
// output such a process writes later is dropped.
const drainTimeout = time.Second

// Run starts cfg.N ranks of cfg.Program, serves them PMI, forwards their
// output and supervises them until every rank has exited and been reaped
// (see the package documentation). It returns nil only if every rank
// exited 0, and otherwise a *JobError.
//
// When ctx is done, Run ends the job as on a failure (SIGTERM, Config.Grace,
// SIGKILL) and returns a JobError with CauseCanceled once every rank is
// reaped. Run is safe to call from several goroutines for separate jobs.
func Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return setupError(fmt.Errorf("invalid config: %w", err))
	}
	prog, cleanup, err := ResolveProgram(ctx, cfg.Program)
	if err != nil {
		return setupError(err)
	}
	defer cleanup()
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		return &JobError{Cause: CauseCanceled, Err: cause, All: multierror.Append(nil, cause)}
	}
	j, err := newJob(cfg, prog)
	if err != nil {
		return setupError(err)
	}
	return j.run(ctx)
}

func setupError(err error) *JobError {
	return &JobError{Cause: CauseSetup, Err: err, All: multierror.Append(nil, err)}
}

// job is one run of Run.
//
// Goroutines, all owned by run, which waits for each before returning:
//   - the spawner (spawn), which starts the ranks on a locked OS thread and
//     holds that thread until run releases it after the last rank is reaped;
//   - per rank, in wg: a waiter (reaps the process: the rank, or for a
//     remote rank the launch command), a PMI server for a local rank
//     (ServeConn, ends at EOF or when serving is cancelled) and two output
//     forwarders (end at EOF or at the drain deadline);
//   - with remote ranks, in wg: the remote service's accept loops and
//     connections (see remoteService).
//
// Each waiter and local PMI server sends exactly one event, forwarders
// none, and the remote service at most one per rank (an abort); events has
// room for all of them, so none ever blocks on it.
type job struct {
	cfg    Config
	prog   string // resolved executable
	id     string // GORUN_JOBID
	key    string // GORUN_JOB_KEY, or "" when the ranks make their own (remote ranks)
	server *pmi.Server
	out    output
	events chan event
	wg     sync.WaitGroup

	// Where each rank runs, by rank; fixed by newJob.
	slots []slot
	// launch and remote serve ranks on other hosts; remote is nil when
	// there are none.
	launch launchTemplate
	remote *remoteService

	// Placement of the ranks on this machine, fixed by newJob: indexed by
	// slot.local. place is nil when no rank runs here. masks holds each
	// local rank's affinity mask, or is nil when ranks are not bound.
	// setGOMAXPROCS is false when the user chose GOMAXPROCS; else each local
	// rank gets its placement's.
	place         *Placement
	masks         []*unix.CPUSet
	setGOMAXPROCS bool

	mu      sync.Mutex // guards outErrs
	outErrs []error    // forwarders' read errors
}

// event is what a per-rank goroutine reports to the supervisor.
type event struct {
	rank int
	// A waiter's report: the process was reaped.
	exited bool
	state  *os.ProcessState
	err    error // Wait's error, or ServeConn's
	// A PMI server's report: the rank's PMI connection ended.
	end pmi.End
}

func newJob(cfg Config, prog string) (*job, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("job key: %w", err)
	}
	nonce := make([]byte, 6)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("job id: %w", err)
	}
	j := &job{
		cfg: cfg, prog: prog,
		id:     strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(nonce),
		key:    hex.EncodeToString(secret),
		events: make(chan event, 3*cfg.N),
		// Read once: ranks must not disagree if the environment changes.
		setGOMAXPROCS: !userGOMAXPROCS(os.LookupEnv, cfg.Env),
	}
	remote, err := j.placeRanks()
	if err != nil {
		return nil, err
	}
	mapping := "" // the server's default: every rank on one node
	if len(cfg.Hosts) > 0 {
		mapping = processMapping(j.slots)
	}
	key, _ := hex.DecodeString(j.key)
	j.server, err = pmi.NewServer(pmi.ServerConfig{Size: cfg.N, KVSName: j.kvsname(), ProcessMapping: mapping, Key: key,
		// The abort is the job's cause, and reaches the supervisor before the exits of
		// the ranks whose barrier it fails (events is FIFO).
		Aborted: func(rank int, end pmi.End) { j.events <- event{rank: rank, end: end} }})
	if err != nil {
		return nil, err
	}
	if remote {
		// Remote ranks get the key on their launch command's standard input (a command line
		// would show it in ps on both machines) and prove it when they join over TCP.
		if j.launch, err = parseLaunchCmd(cfg.LaunchCmd); err != nil {
			return nil, err
		}
		if j.remote, err = newRemoteService(j); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// placeRanks decides where each rank runs (j.slots) and how the ranks on
// this machine are bound (j.place, j.masks). It reports whether any rank
// runs on another host.
func (j *job) placeRanks() (remote bool, err error) {
	isLocal := func(string) bool { return false }
	if len(j.cfg.Hosts) > 0 {
		if isLocal, err = localHost(); err != nil {
			return false, err
		}
	}
	if j.slots, err = layout(j.cfg.N, j.cfg.Hosts, isLocal); err != nil {
		return false, err
	}
	nLocal := 0
	for _, s := range j.slots {
		if s.remote {
			remote = true
		} else {
			nLocal = s.localSize
		}
	}
	if nLocal == 0 {
		return remote, nil
	}
	if j.place, err = Place(nLocal, j.cfg.BindTo, j.cfg.MapBy); err != nil {
		return false, fmt.Errorf("place ranks: %w", err)
	}
	if j.masks, err = j.place.masks(); err != nil {
		return false, fmt.Errorf("place ranks: %w", err)
	}
	return remote, nil
}

// run starts the ranks, supervises them and cleans up.
func (j *job) run(ctx context.Context) error {
	release := make(chan struct{})
	spawned := make(chan spawnResult, 1)
	var spawner sync.WaitGroup
	spawner.Go(func() { j.spawn(spawned, release) })
	defer spawner.Wait()
	defer close(release) // runs before spawner.Wait: every rank is reaped by then

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	if j.remote != nil {
		j.remote.start(serveCtx)
	}
	res := <-spawned
	for _, p := range res.procs {
		j.watch(serveCtx, p)
	}
	s := newSupervisor(j, res.procs)
	s.loop(ctx, res.err)
	j.removeSegmentFiles(res.procs)

	// Every rank (every launch command) is reaped. Remote ranks still alive
	// die now. Let the PMI servers and forwarders see EOF, forcing them
	// after drainTimeout.
	if j.remote != nil {
		j.remote.closeWatches()
		j.remote.stopAccepting()
	}
	cutoff := time.AfterFunc(drainTimeout, func() {
		stopServing()
		if j.remote != nil {
			j.remote.cutOff()
		}
		for _, p := range res.procs {
			p.stdout.SetReadDeadline(time.Now())
			p.stderr.SetReadDeadline(time.Now())
		}
	})
	j.wg.Wait()
	cutoff.Stop()
	for _, p := range res.procs {
		p.stdout.Close()
		p.stderr.Close()
	}
	s.drainEvents() // PMI ends that arrived after the last exit
	problems := j.outErrs
	if j.remote != nil {
		problems = append(problems, j.remote.problems()...)
	}
	return s.result(j.out.firstErr(), problems)
}

// removeSegmentFiles removes the /dev/shm file any rank may have created for its node's
// segment. Ranks unlink it themselves once every local rank has mapped it, and normally use
// memfd_create, which leaves no file at all; this covers a rank killed in between. Every rank
// is reaped by now, so none is still opening it.
func (j *job) removeSegmentFiles(procs []*rankProc) {
	for _, p := range procs {
		if !j.slots[p.rank].remote {
			shmname.Remove(j.kvsname(), p.pid)
		}
	}
}

// kvsname is the job's PMI key-value space name, which ranks use as the job id.
func (j *job) kvsname() string { return "gorun_" + j.id }

type spawnResult struct {
	procs []*rankProc // the ranks started, in rank order
	err   error       // why the next rank could not start
}

// spawn starts every rank, reports them on spawned, and keeps its OS thread
// locked until release is closed. The kernel sends a child its
// PR_SET_PDEATHSIG when the thread that forked it exits, and the Go runtime
// ends a thread when a goroutine exits while locked to it. Locking here
// keeps every other goroutine (which might lock this thread and exit) off
// the forking thread while ranks run; unlocking before returning keeps this
// goroutine from ending the thread itself. The caller must not close
// release until every rank has been reaped.
//
// Locking also confines the CPU masks of bound ranks to this thread: each
// rank is forked while the thread has that rank's mask (see threadMask),
// and the original mask is restored afterwards. Should that fail, spawn
// returns still locked, so the runtime ends the thread (or parks it for
// good, if it is the main thread) rather than run other goroutines on a
// rank's CPUs. The runtime never clones new threads from a locked one, so
// no thread inherits a rank's mask either.
func (j *job) spawn(spawned chan<- spawnResult, release <-chan struct{}) {
	runtime.LockOSThread()
	mask := newThreadMask(j.masks != nil)
	defer func() {
		if !mask.dirty {
			runtime.UnlockOSThread()
		}
	}()
	var res spawnResult
	for r := 0; r < j.cfg.N; r++ {
		p, err := j.startRank(r, mask)
		if err != nil {
			res.err = err
			break
		}
		res.procs = append(res.procs, p)
	}
	spawned <- res
	<-release
}

// watch starts rank p's goroutines (see job).
func (j *job) watch(serveCtx context.Context, p *rankProc) {
	j.wg.Go(func() {
		err := p.cmd.Wait()
		j.events <- event{rank: p.rank, exited: true, state: p.cmd.ProcessState, err: err}
	})
	if p.pmi != nil { // a remote rank's PMI connection comes to the remote service
		j.wg.Go(func() {
			end, err := j.server.ServeConn(serveCtx, p.rank, p.pmi)
			if end.Kind != pmi.EndAborted { // an abort was reported by Aborted
				j.events <- event{rank: p.rank, end: end, err: err}
			}
		})
	}
	prefix := ""
	if j.cfg.TagOutput {
		prefix = "[" + strconv.Itoa(p.rank) + "] "
	}
	j.wg.Go(func() { j.forward(p, "stdout", p.stdout, j.cfg.Stdout, prefix) })
	j.wg.Go(func() { j.forward(p, "stderr", p.stderr, j.cfg.Stderr, prefix) })
}

func (j *job) forward(p *rankProc, name string, r *os.File, w io.Writer, prefix string) {
	err := j.out.forward(r, w, prefix)
	if err == nil {
		return
	}
	if isDrainCutoff(err) {
		err = fmt.Errorf("rank %d's %s was still open %v after the last rank exited "+
			"(held by a process it started?); later output dropped", p.rank, name, drainTimeout)
	} else {
		err = fmt.Errorf("rank %d: reading %s: %w", p.rank, name, err)
	}
	j.mu.Lock()
	j.outErrs = append(j.outErrs, err)
	j.mu.Unlock()
}
