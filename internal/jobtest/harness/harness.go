// Package harness is what the tests that start processes share: Programs builds the programs
// they start, once per test binary, and CheckLeaks fails a test that leaves anything behind.
// It imports nothing of gorun's but internal/shmname, so that the launcher's own tests use it
// as well as package jobtest, which runs jobs through the launcher.
//
// A test binary that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m, nil) }
package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Main runs the tests in a private directory of their own, removed when they end: the
// programs that Programs builds go there, and TMPDIR points into it for the tests and
// everything they start, so that CheckLeaks can tell what a test left there and nothing a
// test leaves outlives the test binary. setup, if not nil, runs before the tests (a TestMain
// that builds its programs up front, say); if it fails, no test runs.
func Main(m *testing.M, setup func() error) {
	os.Exit(run(m, setup))
}

func run(m *testing.M, setup func() error) int {
	root, err := os.MkdirTemp("", "gorun-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	defer os.RemoveAll(root)
	if root, err = filepath.EvalSymlinks(root); err != nil { // as /proc names executables
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	if err := os.Setenv("TMPDIR", tmp); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	builds.Lock()
	builds.root, builds.tmp = root, tmp
	builds.Unlock()
	if setup != nil {
		if err := setup(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}
