package launcher

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// pmiFD is the descriptor number of the PMI socket in every rank: the first
// of exec.Cmd.ExtraFiles.
const pmiFD = 3

// rankProc is one running rank and the launcher's ends of its plumbing.
// startRank fills it; after that the job's goroutines own the fields: the
// waiter owns cmd, the PMI server pmi, the forwarders stdout and stderr.
// For a remote rank, cmd and pid are the launch command's, and pmi is nil
// (the rank dials the remote service).
type rankProc struct {
	rank           int
	pid            int
	host           string // the remote rank's host; "" for a rank on this machine
	cmd            *exec.Cmd
	pmi            net.Conn // launcher's end of the PMI socketpair
	stdout, stderr *os.File // read ends of the rank's output pipes
}

// startRank starts rank r, forked while thread has the rank's CPU mask. On
// error nothing it opened stays open. It must run on the spawner goroutine
// (see job.spawn), which owns thread.
func (j *job) startRank(r int, thread *threadMask) (p *rankProc, err error) {
	var closeOnErr, closeAfterStart []io.Closer
	defer func() {
		for _, c := range closeAfterStart {
			c.Close()
		}
		if err != nil {
			for _, c := range closeOnErr {
				c.Close()
			}
		}
	}()
	p = &rankProc{rank: r}
	sl := j.slots[r]
	var cmd *exec.Cmd
	if sl.remote {
		p.host = sl.host
		cmd = j.launchCommand(r)
	} else {
		var childPMI *os.File
		if p.pmi, childPMI, err = pmiSocketpair(); err != nil {
			return nil, fmt.Errorf("rank %d: PMI socket: %w", r, err)
		}
		closeOnErr, closeAfterStart = append(closeOnErr, p.pmi), append(closeAfterStart, childPMI)
		cmd = exec.Command(j.prog, j.cfg.Args...)
		cmd.Env = j.rankEnv(r)
		cmd.ExtraFiles = []*os.File{childPMI} // becomes pmiFD
	}
	var outW, errW *os.File
	if p.stdout, outW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("rank %d: stdout pipe: %w", r, err)
	}
	closeOnErr, closeAfterStart = append(closeOnErr, p.stdout), append(closeAfterStart, outW)
	if p.stderr, errW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("rank %d: stderr pipe: %w", r, err)
	}
	closeOnErr, closeAfterStart = append(closeOnErr, p.stderr), append(closeAfterStart, errW)

	cmd.Stdout, cmd.Stderr = outW, errW
	// Ranks (and launch commands) die with the launcher. The kernel sends
	// Pdeathsig when the thread that forked the child exits, hence
	// job.spawn's locked thread.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdin io.Reader
	if r == 0 && j.cfg.Stdin != nil {
		stdin = j.cfg.Stdin
	}
	if sl.remote {
		// The job key, as the first line (GORUN_JOB_KEY=stdin: see pmi.JobKey,
		// which the rank reads it with), then rank 0's input.
		key := strings.NewReader(j.key + "\n")
		if stdin != nil {
			stdin = io.MultiReader(key, stdin)
		} else {
			stdin = key
		}
	}
	if stdin != nil {
		cmd.Stdin = stdin
		// A non-*os.File Stdin is copied by exec's goroutine; once the rank has
		// exited, Wait waits for that copy at most this long.
		cmd.WaitDelay = j.cfg.Grace
	}
	var mask *unix.CPUSet // nil: the rank inherits the launcher's mask
	if j.masks != nil && !sl.remote {
		mask = j.masks[sl.local]
	}
	if err := thread.start(mask, cmd.Start); err != nil {
		what := ""
		if sl.remote {
			what = " launch command for host " + sl.host + ":"
		}
		return nil, fmt.Errorf("rank %d:%s %w", r, what, err)
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
	return p, nil
}

// pmiSocketpair returns a connected pair of Unix stream sockets: the
// launcher's end as a net.Conn and the rank's as a file to inherit. Both are
// close-on-exec, so only the rank they are meant for inherits its end (exec
// clears the flag on ExtraFiles in the child).
func pmiSocketpair() (net.Conn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	child := os.NewFile(uintptr(fds[1]), "pmi-rank")
	parent := os.NewFile(uintptr(fds[0]), "pmi-launcher")
	conn, err := net.FileConn(parent) // a duplicate, registered with the poller
	parent.Close()
	if err != nil {
		child.Close()
		return nil, nil, err
	}
	return conn, child, nil
}

// rankEnv is rank r's environment: the launcher's own without inherited
// PMI_* variables (they describe an outer launcher's job, not this one),
// then Config.Env, then GOMAXPROCS unless the user set it, then the job's
// variables. exec keeps the last value of a repeated key, so the job's
// variables always win.
func (j *job) rankEnv(r int) []string {
	env := withoutPMI(os.Environ())
	env = append(env, j.cfg.Env...)
	sl := j.slots[r]
	pl := j.place.Ranks[sl.local]
	if j.setGOMAXPROCS {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(pl.GOMAXPROCS))
	}
	cpus := "" // unbound
	if j.place.Bound() {
		cpus = pl.CPUs.String()
	}
	env = append(env,
		"PMI_FD="+strconv.Itoa(pmiFD),
		"PMI_RANK="+strconv.Itoa(r),
		"PMI_SIZE="+strconv.Itoa(j.cfg.N),
		"GORUN_JOBID="+j.id,
		"GORUN_LOCAL_RANK="+strconv.Itoa(sl.local),
		"GORUN_LOCAL_SIZE="+strconv.Itoa(sl.localSize),
		"GORUN_CPUS="+cpus,
	)
	return append(env, "GORUN_JOB_KEY="+j.key)
}

// launchEnv is a launch command's environment: the launcher's, without the
// variables that describe an outer job (PMI_*, GORUN_JOBID, …), since a
// launch command that does not cross machines (a wrapper, ip netns exec)
// passes its environment on to the rank.
func launchEnv(env []string) []string {
	out := withoutPMI(env)
	return slices.DeleteFunc(out, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return jobOwnedVars[k]
	})
}

// withoutPMI drops PMI_* variables: they describe an outer launcher's job.
func withoutPMI(env []string) []string {
	out := make([]string, 0, len(env)+16)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PMI_") {
			out = append(out, kv)
		}
	}
	return out
}
