package launcher

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"
)

// maxLine is the longest line forwarded whole; a longer one is forwarded in
// pieces of this size, each ended with a newline, so a rank that never
// prints '\n' cannot make the launcher buffer without bound.
const maxLine = 64 << 10

// output is the job's shared sink for forwarded rank output. One mutex
// serialises every write to Stdout and to Stderr (callers may pass the same
// writer for both), so a line from one rank is never split by a line from
// another: each line, prefix included, is one Write call made under mu.
type output struct {
	mu  sync.Mutex // guards writes and err
	err error      // the first write error; lines after it are dropped
}

// write writes one complete line, unless an earlier write failed.
func (o *output) write(w io.Writer, line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	if _, err := w.Write(line); err != nil {
		o.err = err
	}
}

// firstErr returns the first write error.
func (o *output) firstErr() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// forward copies r to w line by line, each line prefixed, until r ends. A
// last line without '\n' is forwarded with one added. It keeps reading after
// a write error, so the rank never blocks on a full pipe. It returns nil at
// EOF and the read error otherwise (os.ErrDeadlineExceeded when the launcher
// stopped waiting for the pipe to close).
func (o *output) forward(r io.Reader, w io.Writer, prefix string) error {
	rd := bufio.NewReaderSize(r, maxLine)
	buf := make([]byte, 0, len(prefix)+maxLine+1)
	for {
		chunk, err := rd.ReadSlice('\n')
		if len(chunk) > 0 {
			buf = append(append(buf[:0], prefix...), chunk...)
			if buf[len(buf)-1] != '\n' {
				buf = append(buf, '\n')
			}
			o.write(w, buf)
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// isDrainCutoff reports whether a forwarder ended because the launcher
// stopped waiting for a pipe that something outside the rank still held.
func isDrainCutoff(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
