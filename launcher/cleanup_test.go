package launcher

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/internal/syncbuf"
)

// TestKilledRankLeavesNoSegmentFile: a rank killed while its /dev/shm fallback segment still
// has a name does not leave the file behind: gorun removes it once the job is over.
func TestKilledRankLeavesNoSegmentFile(t *testing.T) {
	harness.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	err := Run(ctx, Config{N: 2, Program: bin.shmleak, Stdout: &out, Stderr: &out})
	if err == nil {
		t.Fatal("a job whose ranks were killed succeeded")
	}
	paths := strings.Fields(out.String())
	if len(paths) == 0 {
		t.Fatalf("the ranks did not create their files:\n%s", out.String())
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "/dev/shm/gorun-") {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("%s left behind", p)
		}
	}
}
