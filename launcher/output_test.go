package launcher

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestForwardSplitsLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, tc := range []struct {
		name, in, prefix, want string
	}{
		{"lines", "a\nb\n", "", "a\nb\n"},
		{"prefix", "a\nb\n", "[3] ", "[3] a\n[3] b\n"},
		{"no final newline", "a\nb", "[0] ", "[0] a\n[0] b\n"},
		{"empty lines", "\n\n", "> ", "> \n> \n"},
		{"empty", "", "[0] ", ""},
		{"long line", long + "\n", "", long[:maxLine] + "\n" + long[maxLine:] + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o output
			var got bytes.Buffer
			if err := o.forward(strings.NewReader(tc.in), &got, tc.prefix); err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("forward(%.40q) = %.80q, want %.80q", tc.in, got.String(), tc.want)
			}
		})
	}
}

// lineCheckWriter fails on any Write that is not exactly one whole line.
type lineCheckWriter struct {
	mu    sync.Mutex // not needed if output serialises; the race detector checks that
	lines []string
	bad   error
}

func (w *lineCheckWriter) Write(p []byte) (int, error) {
	s := string(p)
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		w.bad = fmt.Errorf("write of %q is not one line", s)
	}
	w.lines = append(w.lines, s)
	return len(p), nil
}

// Many forwarders sharing one output never interleave within a line, and
// every Write is one whole line (the race detector checks that writes are
// serialised: lineCheckWriter has no lock of its own).
func TestForwardConcurrent(t *testing.T) {
	var o output
	w := &lineCheckWriter{}
	var wg sync.WaitGroup
	for r := range 8 {
		pr, pw := io.Pipe()
		wg.Go(func() {
			if err := o.forward(pr, w, fmt.Sprintf("[%d] ", r)); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(pw, "rank %d ", r) // half a line
				fmt.Fprintf(pw, "line %d\n", i)
			}
			pw.Close()
		})
	}
	wg.Wait()
	if w.bad != nil {
		t.Fatal(w.bad)
	}
	if len(w.lines) != 8*200 {
		t.Fatalf("%d lines, want %d", len(w.lines), 8*200)
	}
	for _, l := range w.lines {
		var tag, r, i int
		if _, err := fmt.Sscanf(l, "[%d] rank %d line %d\n", &tag, &r, &i); err != nil || tag != r {
			t.Fatalf("mangled line %q", l)
		}
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("disk full")
}

// After a write error the forwarder keeps draining (so the rank never
// blocks on a full pipe) but drops the output, and the error is kept.
func TestForwardWriteError(t *testing.T) {
	var o output
	w := &failingWriter{}
	in := strings.Repeat("line\n", 1000)
	if err := o.forward(strings.NewReader(in), w, ""); err != nil {
		t.Fatal(err)
	}
	if w.n != 1 || o.firstErr() == nil || o.firstErr().Error() != "disk full" {
		t.Fatalf("%d writes, error %v; want 1 write and the error kept", w.n, o.firstErr())
	}
}
