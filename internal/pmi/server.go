package pmi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ServerConfig describes the job a Server serves.
type ServerConfig struct {
	// Size is the number of ranks (>= 1).
	Size int
	// KVSName names the job's key-value space (printable ASCII, no spaces,
	// at most 255 bytes).
	KVSName string
	// ProcessMapping is the value served for the key PMI_process_mapping.
	// Empty means every rank on one node: (vector,(0,1,Size)).
	ProcessMapping string
	// Key, if set, is the job's secret: ranks joining over TCP (ServePort) must present
	// PortToken(Key, rank) in their initack.
	Key []byte
	// Auth, if set, makes every connection ServePort accepts authenticate as Auth
	// describes (gorun's own rendezvous) before it may claim a rank.
	Auth *Auth
	// Aborted, if set, is called when a rank sends abort, before its connection counts as
	// left: a barrier the others wait in fails only after Aborted returns, so whatever
	// Aborted records comes before any failure the abort causes in another rank.
	Aborted func(rank int, end End)
}

// Maxima the server advertises in get_maxes (they count C's NUL, as Hydra's
// do).
const (
	kvsnameMax = 256
	keylenMax  = MaxKeyLen + 1
	vallenMax  = MaxLine
)

// EndKind says how a rank's PMI connection ended.
type EndKind int

const (
	// EndFinalized: the rank sent finalize and got finalize_ack.
	EndFinalized EndKind = iota + 1
	// EndAborted: the rank sent abort; the job must end with End.ExitCode.
	EndAborted
	// EndClosed: the connection ended without finalize or abort (the rank
	// exited or closed the socket, the server was stopped, or the rank broke
	// the protocol; ServeConn's error says which).
	EndClosed
)

func (k EndKind) String() string {
	switch k {
	case EndFinalized:
		return "finalized"
	case EndAborted:
		return "aborted"
	case EndClosed:
		return "closed"
	}
	return "EndKind(" + strconv.Itoa(int(k)) + ")"
}

// End is how one rank's connection ended.
type End struct {
	Kind     EndKind
	ExitCode int    // EndAborted: the requested exit status
	Message  string // EndAborted: the rank's msg field, if it sent one
}

// Server is the launcher's side of PMI-1 for one job: a key-value space
// shared by all ranks and the job-wide barrier. Each rank's connection is
// served by its own ServeConn call; Server is safe for that concurrent use.
type Server struct {
	size               int
	kvsname, mapping   string
	key                []byte        // see ServerConfig.Key
	auth               *serverAuth   // see ServerConfig.Auth; nil without
	uid                int           // the uid a Unix peer must have with auth: this process's
	openTimeout        time.Duration // bounds each ServePort opening: openTimeout
	maxesReply, kvsRep Message       // constant replies
	aborted            func(rank int, end End)

	mu sync.Mutex // guards the fields below
	// kvs holds the puts visible to gets: those made before the last
	// completed barrier. pending holds puts made since.
	kvs, pending map[string]string
	served       []bool   // served[r]: a ServeConn for rank r was started
	left         int      // connections that have ended
	bar          *barrier // the barrier ranks are entering now
}

// barrier is one round of barrier_in. done is closed when every rank still
// connected has entered (failed == "") or when that can no longer happen
// because a rank left (failed says which). Fields other than done are
// guarded by Server.mu.
type barrier struct {
	entered int
	done    chan struct{}
	failed  string
}

// NewServer returns the server for one job.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Size < 1 {
		return nil, fmt.Errorf("pmi: server for %d ranks", cfg.Size)
	}
	if err := checkValue(cfg.KVSName); err != nil || cfg.KVSName == "" || len(cfg.KVSName) >= kvsnameMax {
		return nil, fmt.Errorf("pmi: bad kvsname %q", cfg.KVSName)
	}
	if cfg.ProcessMapping == "" {
		cfg.ProcessMapping = fmt.Sprintf("(vector,(0,1,%d))", cfg.Size)
	}
	if err := checkValue(cfg.ProcessMapping); err != nil || len(cfg.ProcessMapping) >= vallenMax-64 {
		return nil, fmt.Errorf("pmi: bad process mapping %q", cfg.ProcessMapping)
	}
	auth, err := newServerAuth(cfg.Auth)
	if err != nil {
		return nil, err
	}
	return &Server{
		size: cfg.Size, kvsname: cfg.KVSName, mapping: cfg.ProcessMapping, key: cfg.Key,
		auth: auth, uid: os.Getuid(), openTimeout: openTimeout, aborted: cfg.Aborted,
		maxesReply: msg("maxes", "rc", "0", "kvsname_max", strconv.Itoa(kvsnameMax),
			"keylen_max", strconv.Itoa(keylenMax), "vallen_max", strconv.Itoa(vallenMax)),
		kvsRep:  msg("my_kvsname", "rc", "0", "kvsname", cfg.KVSName),
		kvs:     make(map[string]string),
		pending: make(map[string]string),
		served:  make([]bool, cfg.Size),
		bar:     &barrier{done: make(chan struct{})},
	}, nil
}

// conn is the state of one rank's connection, owned by its ServeConn.
type conn struct {
	nc     net.Conn
	rd     *bufio.Reader
	buf    []byte
	inited bool
}

// ServeConn serves rank's connection until the rank finalizes or aborts, the
// connection ends, or ctx is done; it closes nc before returning. The error
// is nil for finalize, abort and a clean end of stream (End.Kind says which);
// otherwise it says what went wrong (an I/O error, a line that breaks the
// wire format so badly the stream is out of step, ctx's error). A malformed
// but complete request line, or an unknown command, gets a reply with
// rc=-1 and the connection goes on. Each rank may be served once.
func (s *Server) ServeConn(ctx context.Context, rank int, nc net.Conn) (End, error) {
	defer nc.Close()
	if err := s.claim(rank); err != nil {
		return End{Kind: EndClosed}, err
	}
	defer s.leave()
	stop := context.AfterFunc(ctx, func() { nc.Close() }) // unblocks a pending read
	defer stop()

	c := &conn{nc: nc, rd: newLineReader(nc), buf: make([]byte, 0, MaxLine)}
	for {
		end, done, err := s.serveOne(ctx, c)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				err = fmt.Errorf("pmi: rank %d: %w", rank, context.Cause(ctx))
			case isClosed(err):
				err = nil // the rank went away; End.Kind says it did not finalize
			default:
				err = fmt.Errorf("pmi: rank %d: %w", rank, err)
			}
			return End{Kind: EndClosed}, err
		}
		if done {
			if end.Kind == EndAborted && s.aborted != nil {
				s.aborted(rank, end) // before the deferred leave fails a barrier
			}
			return end, nil
		}
	}
}

// serveOne reads one request and answers it. done reports that the
// connection is over (finalize or abort).
func (s *Server) serveOne(ctx context.Context, c *conn) (end End, done bool, err error) {
	req, err := readMessage(c.rd)
	if errors.Is(err, ErrMalformed) && !errors.Is(err, errLineTooLong) {
		// A complete line that breaks the format: refuse it, stay in step.
		return End{}, false, c.reply(msg("error", "rc", "-1", "msg", "malformed_request"))
	}
	if err != nil {
		return End{}, false, err
	}
	return s.handle(ctx, c, req)
}

// isClosed reports whether err means the peer closed its end: a clean EOF
// between lines, a reset (it exited with our reply unread), a broken pipe.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// claim records that rank's connection is being served.
func (s *Server) claim(rank int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rank < 0 || rank >= s.size {
		return fmt.Errorf("pmi: rank %d out of range for size %d", rank, s.size)
	}
	if s.served[rank] {
		return fmt.Errorf("pmi: rank %d is already served", rank)
	}
	s.served[rank] = true
	return nil
}

// leave records that a connection ended. A barrier waiting for it can then
// never complete, so it fails.
func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.left++
	s.checkBarrierLocked()
}

// checkBarrierLocked completes or fails the current barrier once every rank
// has either entered it or left. s.mu must be held.
func (s *Server) checkBarrierLocked() {
	b := s.bar
	if b.entered == 0 || b.entered+s.left < s.size {
		return
	}
	if s.left > 0 {
		b.failed = fmt.Sprintf("%d_rank(s)_left_the_job", s.left)
	} else {
		for k, v := range s.pending {
			s.kvs[k] = v
		}
		clear(s.pending)
	}
	close(b.done)
	s.bar = &barrier{done: make(chan struct{})}
}

// handle answers one request. done reports that the connection is over.
func (s *Server) handle(ctx context.Context, c *conn, req Message) (end End, done bool, err error) {
	if !c.inited && req.Cmd != "init" && req.Cmd != "abort" {
		return End{}, false, c.reply(msg(req.Cmd, "rc", "-1", "msg", "init_first"))
	}
	switch req.Cmd {
	case "init":
		return End{}, false, c.init(req)
	case "get_maxes":
		return End{}, false, c.reply(s.maxesReply)
	case "get_appnum":
		return End{}, false, c.reply(msg("appnum", "rc", "0", "appnum", "0"))
	case "get_universe_size":
		return End{}, false, c.reply(msg("universe_size", "rc", "0", "size", strconv.Itoa(s.size)))
	case "get_my_kvsname":
		return End{}, false, c.reply(s.kvsRep)
	case "put":
		return End{}, false, c.reply(s.put(req))
	case "get":
		return End{}, false, c.reply(s.get(req))
	case "barrier_in":
		return End{}, false, s.barrierIn(ctx, c)
	case "finalize":
		return End{Kind: EndFinalized}, true, c.reply(msg("finalize_ack", "rc", "0"))
	case "abort":
		return abortEnd(req), true, nil
	}
	return End{}, false, c.reply(msg("error", "rc", "-1", "msg", "unknown_command"))
}

func (c *conn) init(req Message) error {
	v, _ := req.Get("pmi_version")
	if v != "1" { // PMI-2 (pmi_version=2) would branch off here
		return c.reply(msg("response_to_init", "rc", "-1", "pmi_version", "1", "pmi_subversion", "1",
			"msg", "only_pmi_version_1"))
	}
	c.inited = true
	return c.reply(msg("response_to_init", "rc", "0", "pmi_version", "1", "pmi_subversion", "1"))
}

// abortEnd reads an abort request. A missing or unparsable exitcode still
// aborts the job, with status 1.
func abortEnd(req Message) End {
	e := End{Kind: EndAborted, ExitCode: 1}
	if v, ok := req.Get("exitcode"); ok {
		if n, err := strconv.Atoi(v); err == nil {
			e.ExitCode = n
		}
	}
	e.Message, _ = req.Get("msg")
	return e
}

// checkKVSKey validates the kvsname and key of a put or get and returns the
// key, or a refusal reply.
func (s *Server) checkKVSKey(req Message, result string) (string, *Message) {
	name, _ := req.Get("kvsname")
	key, ok := req.Get("key")
	var why string
	switch {
	case name != s.kvsname:
		why = "unknown_kvsname"
	case !ok || key == "":
		why = "missing_key"
	case len(key) > MaxKeyLen:
		why = "key_too_long"
	default:
		return key, nil
	}
	r := msg(result, "rc", "-1", "msg", why)
	return "", &r
}

func (s *Server) put(req Message) Message {
	key, refuse := s.checkKVSKey(req, "put_result")
	if refuse != nil {
		return *refuse
	}
	value, ok := req.Get("value")
	if !ok {
		return msg("put_result", "rc", "-1", "msg", "missing_value")
	}
	s.mu.Lock()
	s.pending[key] = value // a later put of the same key wins
	s.mu.Unlock()
	return msg("put_result", "rc", "0", "msg", "success")
}

func (s *Server) get(req Message) Message {
	key, refuse := s.checkKVSKey(req, "get_result")
	if refuse != nil {
		return *refuse
	}
	if key == "PMI_process_mapping" {
		return msg("get_result", "rc", "0", "msg", "success", "value", s.mapping)
	}
	s.mu.Lock()
	v, ok := s.kvs[key]
	s.mu.Unlock()
	if !ok {
		return msg("get_result", "rc", "-1", "msg", "key_not_found", "value", "unknown")
	}
	return msg("get_result", "rc", "0", "msg", "success", "value", v)
}

// barrierIn enters the current barrier, waits for it (or for ctx) and
// replies barrier_out: rc=0 once every rank entered, rc=-1 if a rank left
// the job first so the barrier can never complete.
func (s *Server) barrierIn(ctx context.Context, c *conn) error {
	s.mu.Lock()
	b := s.bar
	b.entered++
	s.checkBarrierLocked()
	s.mu.Unlock()
	select {
	case <-b.done:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	s.mu.Lock()
	failed := b.failed
	s.mu.Unlock()
	if failed != "" {
		return c.reply(msg("barrier_out", "rc", "-1", "msg", failed))
	}
	return c.reply(msg("barrier_out", "rc", "0"))
}

// reply sends m with one write.
func (c *conn) reply(m Message) error {
	var err error
	if c.buf, err = writeMessage(c.nc, c.buf, m); err != nil {
		return fmt.Errorf("reply %s: %w", m.Cmd, err)
	}
	return nil
}
