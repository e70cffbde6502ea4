package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest"
	"github.com/gorun-hpc/gorun/tuning"
)

// gorun-bench model measures every path (tiny sizes and counts here), writes a tuning file, and
// gorun --explain, pointed at it by GORUN_TUNING, shows the choices coming from it.
func TestModelWritesTuningThatExplainShows(t *testing.T) {
	benchProg := jobtest.Program(t, "../cmd/gorun-bench")
	gorun := jobtest.Program(t, "../cmd/gorun")
	dir := t.TempDir()
	tuningPath := filepath.Join(dir, "tuning.json")
	plot := filepath.Join(dir, "model.svg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, benchProg, "model", "--json", "-m", "8:4K", "-i", "5", "-x", "1",
		"--repeat", "1", "--out", tuningPath, "--plot", plot, "--progress", "off", "--machine", "test machine")
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("model: %v\n%s", err, stderrOf(err))
	}
	var rep ModelReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if len(rep.Paths) != 7 || len(rep.Crossovers) == 0 {
		t.Errorf("report has %d paths, %d crossovers", len(rep.Paths), len(rep.Crossovers))
	}
	f, err := tuning.ReadFile(tuningPath)
	if err != nil {
		t.Fatal(err)
	}
	if f.Params != rep.Choices.Tuning || f.Machine != "test machine" {
		t.Errorf("tuning file %+v, report chose %+v", f, rep.Choices.Tuning)
	}
	if st, err := os.Stat(plot); err != nil || st.Size() < 1000 {
		t.Errorf("plot: %v", err)
	}

	cmd = exec.CommandContext(ctx, gorun, "--explain")
	cmd.Env = append(os.Environ(), "GORUN_TUNING="+tuningPath)
	exp, err := cmd.Output()
	if err != nil {
		t.Fatalf("gorun --explain: %v\n%s", err, stderrOf(err))
	}
	text := string(exp)
	if want := "protocol choices from " + tuningPath + " (measured "; !strings.Contains(text, want) {
		t.Errorf("--explain does not name the file:\n%s", text)
	}
	if want := fmt.Sprintf("shm eager up to %s,", explainBytes(f.Params.ShmEager)); f.Params.ShmEager > 0 && !strings.Contains(text, want) {
		t.Errorf("--explain does not show %q:\n%s", want, text)
	}
	if want := "single copy: " + f.Params.CMA; f.Params.CMA != "" && !strings.Contains(text, want) {
		t.Errorf("--explain does not show %q:\n%s", want, text)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("the model left files behind: %v", ents)
	}
}

// explainBytes writes a size the way gorun --explain does.
func explainBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func TestBatching(t *testing.T) {
	prog := jobtest.Program(t, "../cmd/gorun-bench")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Batching(ctx, BatchConfig{Program: prog, Repeat: 1, RateIterations: 5, StreamMessages: 50,
		Settings: []batchSetting{{}, {Limit: "8", Flush: 20 * time.Microsecond}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[1].Expected != 15 || rep.Rows[0].Rate <= 0 || rep.Rows[1].Latency <= 0 {
		t.Errorf("report %+v", rep)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), "A=8 tau=20µs") {
		t.Errorf("%v\n%s", err, b.String())
	}
}
