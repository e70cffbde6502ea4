package pmi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Limits of the wire format. They are the tightest of Hydra 4.0.2 and
// Slurm 22.05 (see shared/reference/launchers.md).
const (
	// MaxLine is the longest line, newline included. Slurm reads a request
	// with one read(fd, buf, 1024); Hydra truncates longer values.
	MaxLine = 1024
	// MaxKeyLen is the longest key a put or get may use (keylen_max=64
	// counts C's terminating NUL).
	MaxKeyLen = 63
)

// ErrMalformed reports a line that breaks the wire format: too long,
// a forbidden byte, a field without '=', a duplicate key, no cmd. Errors
// from [ParseLine] and [Message.AppendLine] wrap it.
var ErrMalformed = errors.New("pmi: malformed line")

// errLineTooLong is the ErrMalformed after which a stream is out of step.
var errLineTooLong = fmt.Errorf("%w: no newline within %d bytes", ErrMalformed, MaxLine)

// KV is one key=value field of a line.
type KV struct {
	Key, Value string
}

// Message is one request or reply. Cmd is the value of the cmd key; Args are
// the other fields in wire order (encoding keeps that order, parsing records
// it, but readers look fields up by key with [Message.Get]).
type Message struct {
	Cmd  string
	Args []KV
}

// msg builds a Message from alternating keys and values.
func msg(cmd string, kv ...string) Message {
	m := Message{Cmd: cmd, Args: make([]KV, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Args = append(m.Args, KV{kv[i], kv[i+1]})
	}
	return m
}

// Get returns the value of key. Get("cmd") returns m.Cmd.
func (m Message) Get(key string) (string, bool) {
	if key == "cmd" {
		return m.Cmd, m.Cmd != ""
	}
	for _, kv := range m.Args {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// String renders m as its line without the newline, for error messages. It
// does not validate.
func (m Message) String() string {
	b := append([]byte("cmd="), m.Cmd...)
	for _, kv := range m.Args {
		b = append(b, ' ')
		b = append(b, kv.Key...)
		b = append(b, '=')
		b = append(b, kv.Value...)
	}
	return string(b)
}

// AppendLine appends m's line, newline included, to dst. It fails, leaving
// dst's contents unchanged, if a key or value has a forbidden byte, a key is
// empty, contains '=' or repeats, or the line would exceed MaxLine bytes.
func (m Message) AppendLine(dst []byte) ([]byte, error) {
	start := len(dst)
	if m.Cmd == "" {
		return dst, fmt.Errorf("%w: empty cmd", ErrMalformed)
	}
	if err := checkValue(m.Cmd); err != nil {
		return dst, fmt.Errorf("%w: cmd: %v", ErrMalformed, err)
	}
	dst = append(dst, "cmd="...)
	dst = append(dst, m.Cmd...)
	for i, kv := range m.Args {
		if err := checkKey(kv.Key); err != nil {
			return dst[:start], fmt.Errorf("%w: key %q: %v", ErrMalformed, kv.Key, err)
		}
		if err := checkValue(kv.Value); err != nil {
			return dst[:start], fmt.Errorf("%w: value of %s: %v", ErrMalformed, kv.Key, err)
		}
		for _, prev := range m.Args[:i] {
			if prev.Key == kv.Key {
				return dst[:start], fmt.Errorf("%w: duplicate key %s", ErrMalformed, kv.Key)
			}
		}
		dst = append(dst, ' ')
		dst = append(dst, kv.Key...)
		dst = append(dst, '=')
		dst = append(dst, kv.Value...)
	}
	dst = append(dst, '\n')
	if n := len(dst) - start; n > MaxLine {
		return dst[:start], fmt.Errorf("%w: line of %d bytes exceeds %d", ErrMalformed, n, MaxLine)
	}
	return dst, nil
}

// ParseLine parses one line. A single trailing '\n' is allowed and ignored.
// Fields are separated by one or more spaces; each is key=value, split at the
// first '=' (a value may contain '=' and may be empty). Exactly one field must
// be cmd, with a non-empty value, in any position. The line must fit MaxLine
// bytes including its newline, every byte must be printable ASCII other than
// '\\', and no key may repeat. The result does not alias line.
func ParseLine(line []byte) (Message, error) {
	if len(line) > MaxLine || (len(line) == MaxLine && line[MaxLine-1] != '\n') {
		return Message{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxLine)
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	var m Message
	haveCmd := false
	for i := 0; i < len(line); {
		if line[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			if !allowedByte(line[j]) {
				return Message{}, fmt.Errorf("%w: forbidden byte %#x at offset %d", ErrMalformed, line[j], j)
			}
			j++
		}
		key, value, err := splitField(line[i:j])
		if err != nil {
			return Message{}, err
		}
		i = j
		if key == "cmd" {
			if haveCmd {
				return Message{}, fmt.Errorf("%w: duplicate key cmd", ErrMalformed)
			}
			if value == "" {
				return Message{}, fmt.Errorf("%w: empty cmd", ErrMalformed)
			}
			haveCmd, m.Cmd = true, value
			continue
		}
		if _, dup := m.Get(key); dup {
			return Message{}, fmt.Errorf("%w: duplicate key %s", ErrMalformed, key)
		}
		m.Args = append(m.Args, KV{key, value})
	}
	if !haveCmd {
		return Message{}, fmt.Errorf("%w: no cmd field", ErrMalformed)
	}
	return m, nil
}

// splitField splits one field (already checked for forbidden bytes) at its
// first '='.
func splitField(f []byte) (key, value string, err error) {
	for k, c := range f {
		if c == '=' {
			if k == 0 {
				return "", "", fmt.Errorf("%w: field %q has an empty key", ErrMalformed, f)
			}
			return string(f[:k]), string(f[k+1:]), nil
		}
	}
	return "", "", fmt.Errorf("%w: field %q has no '='", ErrMalformed, f)
}

// allowedByte reports whether c may appear in a key or value: printable
// ASCII except space and backslash.
func allowedByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '\\'
}

func checkValue(v string) error {
	for i := 0; i < len(v); i++ {
		if !allowedByte(v[i]) {
			return fmt.Errorf("forbidden byte %#x at offset %d", v[i], i)
		}
	}
	return nil
}

func checkKey(k string) error {
	if k == "" {
		return errors.New("empty")
	}
	if k == "cmd" {
		return errors.New("cmd is not an argument")
	}
	for i := 0; i < len(k); i++ {
		if k[i] == '=' {
			return errors.New("contains '='")
		}
	}
	return checkValue(k)
}

// newLineReader returns a reader whose buffer holds exactly one maximal line.
func newLineReader(r io.Reader) *bufio.Reader {
	return bufio.NewReaderSize(r, MaxLine)
}

// readMessage reads and parses one line. A line longer than MaxLine is an
// ErrMalformed error after which the stream is out of step and must be
// abandoned. A stream that ends mid-line gives io.ErrUnexpectedEOF; one that
// ends between lines gives io.EOF.
func readMessage(r *bufio.Reader) (Message, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == nil:
		return ParseLine(line)
	case errors.Is(err, bufio.ErrBufferFull):
		return Message{}, errLineTooLong
	case errors.Is(err, io.EOF) && len(line) > 0:
		return Message{}, fmt.Errorf("pmi: connection closed mid-line: %w", io.ErrUnexpectedEOF)
	default:
		return Message{}, err
	}
}

// writeMessage encodes m into buf and sends it with one Write call (a net.Conn
// on a stream socket issues one write(2) for a line this short).
func writeMessage(w io.Writer, buf []byte, m Message) ([]byte, error) {
	buf, err := m.AppendLine(buf[:0])
	if err != nil {
		return buf, err
	}
	_, err = w.Write(buf)
	return buf, err
}
