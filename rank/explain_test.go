package rank

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/transport/shm"
	"github.com/gorun-hpc/gorun/tuning"
)

// Explain names the tuning file the thresholds came from and the protocols they choose.
func TestExplainTuningFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tuning.json")
	if err := tuning.WriteFile(path, tuning.File{Machine: "test", Params: tuning.Params{ShmEager: 4096, SockEager: 1000, CMA: "on"}}); err != nil {
		t.Fatal(err)
	}
	got, err := tuning.Resolve(tuning.Params{ShmChunk: 8192}, envOf(map[string]string{"GORUN_TUNING": path, "GORUN_EAGER_LIMIT": "2000"}))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := Explain(&out, got, []int{8, 4096, 4097, 1 << 20}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{path, "eager", "single-copy", "rendezvous"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, out.String())
		}
	}
}

// FuzzExplain: whatever tuning file tuning accepts, the shared-memory configuration a rank
// builds from it can lay out its eager messages, and Explain describes it. (Decoding the file
// is tuning's FuzzTuningFile.)
func FuzzExplain(f *testing.F) {
	f.Add([]byte(`{"version":1,"machine":"m","measured":"2024-01-02T00:00:00Z","tuning":{"shm_eager":4096,"sock_eager":8192,"cma":"on","cma_min":4096}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_ring":67108864,"shm_eager":33554432,"shm_bulk":1073741824,"shm_chunk":1073741824}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_bulk":4611686018427387904}}`))
	f.Add([]byte(`{"version":1,"tuning":{"shm_flush_ns":-1,"shm_batch":3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "tuning.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// As a rank resolves it: the file's values, checked together with the defaults.
		tun, err := tuning.Resolve(tuning.Params{}, envOf(map[string]string{"GORUN_TUNING": path}))
		if err != nil {
			return
		}
		for _, oversubscribed := range []bool{false, true} {
			c := shmConfig(tun, oversubscribed)
			c.Line = shm.MaxLine
			if c.EagerMax() < 1 && tun.ShmEager != 0 {
				t.Fatalf("eager max %d", c.EagerMax())
			}
		}
		if err := Explain(io.Discard, tun, ExplainSizes); err != nil {
			t.Fatal(err)
		}
	})
}
