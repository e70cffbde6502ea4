package pmi

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

var (
	// ErrNoLauncher is returned by Connect when the environment names no PMI
	// server: the process was started without a launcher and runs as a world
	// of one.
	ErrNoLauncher = errors.New("pmi: no launcher in the environment (PMI_FD unset)")
	// ErrNotFound is returned by Get for a key nobody put (or not yet
	// visible because no barrier followed the put).
	ErrNotFound = errors.New("pmi: key not found")
	// ErrClosed is returned by calls on a Client after Finalize or Abort.
	ErrClosed = errors.New("pmi: client closed")
)

// ReplyError is a reply whose rc is not 0: the server refused the request.
type ReplyError struct {
	Cmd string // the request's cmd
	RC  string // the reply's rc, verbatim
	Msg string // the reply's msg, if any
}

func (e *ReplyError) Error() string {
	s := fmt.Sprintf("pmi: %s failed: rc=%s", e.Cmd, e.RC)
	if e.Msg != "" {
		s += " msg=" + e.Msg
	}
	return s
}

// Client is one rank's side of the PMI-1 protocol. It is not safe for
// concurrent use: the protocol is strictly one request then its reply, so
// the caller serialises calls (a rank's bootstrap runs on one goroutine).
type Client struct {
	conn net.Conn
	rd   *bufio.Reader
	buf  []byte // the encoded request; reused

	rank, size int
	kvsname    string
	keyMax     int // longest key the server accepts (bytes, without NUL)
	valMax     int // longest value the server accepts (bytes, without NUL)
	closed     bool
}

// Connect joins the job described by the environment (getenv is os.Getenv
// in production). The variants, checked in order:
//
//   - PMI_FD: an inherited, connected socket (gorun, Hydra, srun --mpi=pmi2);
//     PMI_RANK and PMI_SIZE give rank and size.
//   - PMI_PORT and PMI_ID (Hydra -pmi-port, gorun's remote ranks): the same
//     protocol over TCP, opened by an initack exchange (port.go).
//
// With neither, Connect returns ErrNoLauncher and the caller runs as a world
// of one. Connect takes over the inherited descriptor (it is closed and
// replaced by a close-on-exec duplicate, so children of the rank do not
// inherit it), then performs init, get_maxes and get_my_kvsname.
func Connect(getenv func(string) string) (*Client, error) {
	fdStr := getenv("PMI_FD")
	if fdStr == "" {
		if getenv("PMI_PORT") != "" {
			return dialPort(getenv)
		}
		return nil, ErrNoLauncher
	}
	fd, err := envInt(getenv, "PMI_FD", 0)
	if err != nil {
		return nil, err
	}
	rank, err := envInt(getenv, "PMI_RANK", 0)
	if err != nil {
		return nil, err
	}
	size, err := envInt(getenv, "PMI_SIZE", 1)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "pmi")
	if f == nil {
		return nil, fmt.Errorf("pmi: PMI_FD=%s is not a valid descriptor", fdStr)
	}
	conn, err := net.FileConn(f) // dups f with close-on-exec
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("pmi: PMI_FD=%d: %w", fd, err)
	}
	c, err := NewClient(conn, rank, size)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// envInt parses the integer variable name, which must be at least min.
func envInt(getenv func(string) string, name string, min int) (int, error) {
	s := getenv(name)
	if s == "" {
		return 0, fmt.Errorf("pmi: PMI_FD is set but %s is not", name)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min {
		return 0, fmt.Errorf("pmi: %s=%q: want an integer >= %d", name, s, min)
	}
	return v, nil
}

// NewClient runs the PMI-1 handshake (init, get_maxes, get_my_kvsname) over
// conn, an already-connected stream to a PMI server, for the given rank of a
// job of size ranks. It is what Connect does after finding the socket; tests
// use it with a [Server] in the same process. The Client owns conn from now
// on, even if NewClient fails (the caller closes it then).
func NewClient(conn net.Conn, rank, size int) (*Client, error) {
	if size < 1 || rank < 0 || rank >= size {
		return nil, fmt.Errorf("pmi: rank %d out of range for size %d", rank, size)
	}
	c := &Client{
		conn: conn, rd: newLineReader(conn), buf: make([]byte, 0, MaxLine),
		rank: rank, size: size,
	}
	if err := c.handshake(); err != nil {
		return nil, err
	}
	return c, nil
}

// handshake is PMI-1's opening. A PMI-2 client would send pmi_version=2
// here and switch to length-prefixed messages; that variant is not built.
func (c *Client) handshake() error {
	r, err := c.call(msg("init", "pmi_version", "1", "pmi_subversion", "1"), "response_to_init")
	if err != nil {
		return err
	}
	if v, ok := r.Get("pmi_version"); ok && v != "1" {
		return fmt.Errorf("pmi: server speaks pmi_version=%s, want 1", v)
	}
	r, err = c.call(msg("get_maxes"), "maxes")
	if err != nil {
		return err
	}
	// The maxima count C's terminating NUL.
	if c.keyMax, err = replyInt(r, "keylen_max", 2, 1<<20); err != nil {
		return err
	}
	if c.valMax, err = replyInt(r, "vallen_max", 2, 1<<20); err != nil {
		return err
	}
	c.keyMax, c.valMax = min(c.keyMax-1, MaxKeyLen), c.valMax-1
	r, err = c.call(msg("get_my_kvsname"), "my_kvsname")
	if err != nil {
		return err
	}
	name, ok := r.Get("kvsname")
	if !ok || name == "" {
		return fmt.Errorf("pmi: reply %q has no kvsname", r)
	}
	c.kvsname = name
	return nil
}

// replyInt reads the integer field key of r and checks lo <= value <= hi.
func replyInt(r Message, key string, lo, hi int) (int, error) {
	s, ok := r.Get(key)
	if !ok {
		return 0, fmt.Errorf("pmi: reply %q has no %s", r, key)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("pmi: reply %q: %s=%s is not in [%d, %d]", r, key, s, lo, hi)
	}
	return v, nil
}

// Rank returns this process's rank, from PMI_RANK.
func (c *Client) Rank() int { return c.rank }

// Size returns the number of ranks in the job, from PMI_SIZE.
func (c *Client) Size() int { return c.size }

// KVSName returns the job's key-value space, from get_my_kvsname.
func (c *Client) KVSName() string { return c.kvsname }

// Put stores key=value in the job's KVS; other ranks see it after the next
// Barrier. The key must be 1..63 bytes and both must be printable ASCII
// without spaces or backslashes, within the server's maxima and the line
// limit (values much over 900 bytes do not fit: split them across keys).
func (c *Client) Put(key, value string) error {
	if key == "" {
		return errors.New("pmi: put: empty key")
	}
	if len(key) > c.keyMax || len(value) > c.valMax {
		return fmt.Errorf("pmi: put %q: key (%d bytes) or value (%d bytes) over the server's maxima (%d, %d)",
			key, len(key), len(value), c.keyMax, c.valMax)
	}
	_, err := c.call(msg("put", "kvsname", c.kvsname, "key", key, "value", value), "put_result")
	return err
}

// Barrier blocks until every rank of the job has entered it; puts made
// before it are visible to gets after it.
func (c *Client) Barrier() error {
	_, err := c.call(msg("barrier_in"), "barrier_out")
	return err
}

// Get returns the value another rank (or this one) put before the last
// Barrier, or a server-supplied key such as PMI_process_mapping. A missing key
// gives an error wrapping ErrNotFound (Hydra replies rc=-1 ... value=unknown,
// Slurm rc=1).
func (c *Client) Get(key string) (string, error) {
	if key == "" || len(key) > c.keyMax {
		return "", fmt.Errorf("pmi: get %q: key must be 1..%d bytes", key, c.keyMax)
	}
	r, err := c.call(msg("get", "kvsname", c.kvsname, "key", key), "get_result")
	var re *ReplyError
	if errors.As(err, &re) {
		return "", fmt.Errorf("pmi: get %q: %w (rc=%s)", key, ErrNotFound, re.RC)
	}
	if err != nil {
		return "", err
	}
	v, ok := r.Get("value")
	if !ok {
		return "", fmt.Errorf("pmi: get %q: reply %q has no value", key, r)
	}
	return v, nil
}

// Abort asks the launcher to end the whole job with exit status code. No
// reply is expected: the launcher kills the job, this process included, so
// the caller should exit(code) if Abort returns. msg is sent for the
// launcher's report with forbidden bytes replaced by '_' and shortened to
// fit the line. The connection is closed afterwards.
func (c *Client) Abort(code int, msg string) error {
	if c.closed {
		return ErrClosed
	}
	m := Message{Cmd: "abort", Args: []KV{{"exitcode", strconv.Itoa(code)}}}
	if s := sanitize(msg, MaxLine-64); s != "" {
		m.Args = append(m.Args, KV{"msg", s})
	}
	var err error
	c.buf, err = writeMessage(c.conn, c.buf, m)
	c.closed = true
	if cerr := c.conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pmi: abort: %w", err)
	}
	return nil
}

// sanitize makes s a legal value of at most n bytes.
func sanitize(s string, n int) string {
	b := []byte(s[:min(len(s), n)])
	for i, c := range b {
		if !allowedByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

// Finalize leaves the job (finalize, then finalize_ack) and closes the
// connection. The Client is unusable afterwards.
func (c *Client) Finalize() error {
	_, err := c.call(msg("finalize"), "finalize_ack")
	if c.closed {
		return err
	}
	c.closed = true
	if cerr := c.conn.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("pmi: finalize: %w", cerr)
	}
	return err
}

// Close closes the connection without leaving the job (no finalize): for a rank that fails
// after joining. The Client is unusable afterwards.
func (c *Client) Close() error {
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	return c.conn.Close()
}

// call sends req with one write and reads its reply, which must have cmd
// want. A reply with an rc other than 0 is a *ReplyError (both servers send
// rc=0 on success; Hydra omits rc on some replies, which counts as success).
func (c *Client) call(req Message, want string) (Message, error) {
	if c.closed {
		return Message{}, ErrClosed
	}
	var err error
	if c.buf, err = writeMessage(c.conn, c.buf, req); err != nil {
		return Message{}, fmt.Errorf("pmi: send %s: %w", req.Cmd, err)
	}
	r, err := readMessage(c.rd)
	if err != nil {
		return Message{}, fmt.Errorf("pmi: reply to %s: %w", req.Cmd, err)
	}
	if r.Cmd != want {
		return Message{}, fmt.Errorf("pmi: reply to %s: got %q, want cmd=%s", req.Cmd, r, want)
	}
	if rc, ok := r.Get("rc"); ok && rc != "0" {
		m, _ := r.Get("msg")
		return r, &ReplyError{Cmd: req.Cmd, RC: rc, Msg: m}
	}
	return r, nil
}
