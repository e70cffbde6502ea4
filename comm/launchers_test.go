package comm_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
)

// Programs written against comm run unchanged under other launchers: MPICH's Hydra (PMI over
// an inherited socket, or over TCP with -pmi-port) and Open MPI's mpirun (no key-value
// service: rank 0 serves gorun's own). Each test skips, visibly, where the launcher is not
// installed; CI installs them (.ci/run).

func runLauncher(t *testing.T, cmd string, args []string) (string, int) {
	t.Helper()
	path, err := exec.LookPath(cmd)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install mpich openmpi-bin); skipping", cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish in time:\n%s", cmd, out)
	}
	return string(out), code
}

func TestUnderHydra(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"pmi-fd/p2p", []string{"-n", "4", prog, "p2p"}},
		{"pmi-fd/coll", []string{"-n", "4", prog, "coll"}},
		{"pmi-port/p2p", []string{"-n", "4", "-pmi-port", prog, "p2p"}},
		{"pmi-port/coll", []string{"-n", "4", "-pmi-port", prog, "coll"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runLauncher(t, "mpiexec.hydra", tc.args)
			if code != 0 || !strings.Contains(out, "ok on 4 ranks") {
				t.Fatalf("exit %d:\n%s", code, out)
			}
		})
	}
	t.Run("abort", func(t *testing.T) {
		out, code := runLauncher(t, "mpiexec.hydra", []string{"-n", "4", prog, "abort"})
		if code != 7 {
			t.Fatalf("a rank's Abort(7) ended the job with %d:\n%s", code, out)
		}
	})
	harness.WaitGone(t, prog, 5*time.Second)
}

func TestUnderOpenMPI(t *testing.T) {
	prog := jobtest.Program(t, "./testdata/e2e")
	base := []string{"--allow-run-as-root", "--oversubscribe", "-n", "4"}
	for _, mode := range []string{"p2p", "coll"} {
		t.Run(mode, func(t *testing.T) {
			out, code := runLauncher(t, "mpirun.openmpi", append(base, prog, mode))
			if code != 0 || !strings.Contains(out, "ok on 4 ranks") {
				t.Fatalf("exit %d:\n%s", code, out)
			}
		})
	}
	harness.WaitGone(t, prog, 5*time.Second)
}
