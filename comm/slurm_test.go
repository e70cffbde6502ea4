package comm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
)

// TestUnderSlurm runs test/slurm/run.sh: a private Slurm (munged, slurmctld, slurmd, no
// systemd) started for the test, the e2e program's p2p and coll modes under
// `srun --mpi=pmi2 -O -n 4` and plain `srun -O -n 4` (gorun's rendezvous on the step's
// reserved port), then the daemons stopped by pid. It skips, saying why, when Slurm is not
// installed or the machine cannot host it (the script exits 77).
func TestUnderSlurm(t *testing.T) {
	for _, cmd := range []string{"munged", "slurmctld", "slurmd", "srun", "sinfo"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("%s is not installed (apt-get install slurmctld slurmd slurm-client munge); skipping", cmd)
		}
	}
	prog := jobtest.Program(t, "./testdata/e2e")
	// The script keeps everything, pid files included, under $TMPDIR: should it be killed
	// before its own trap runs, stopDaemons still finds the daemons there.
	tmp := t.TempDir()
	t.Cleanup(func() { stopDaemons(t, tmp) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "../test/slurm/run.sh", prog)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	// Its own process group, so that a timeout ends srun and timeout(1) with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 77:
		t.Skip(strings.TrimSpace(out.String()))
	case err != nil:
		t.Fatalf("test/slurm/run.sh: %v after %v\n%s", err, time.Since(start).Round(time.Millisecond), out.String())
	}
	t.Logf("after %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	harness.WaitGone(t, prog, 10*time.Second)
}

// stopDaemons kills what a pid file under dir/gorun-slurm.*/ names, if that is still a Slurm
// or MUNGE daemon, and fails the test if there was one: the script should have stopped it.
func stopDaemons(t *testing.T, dir string) {
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "gorun-slurm.*", "*.pid"))
	for _, f := range pidFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err != nil {
			continue
		}
		if name := strings.TrimSpace(string(comm)); name == "slurmd" || name == "slurmctld" || name == "munged" {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("%s (pid %d) was still running after the script", name, pid)
		}
	}
}
