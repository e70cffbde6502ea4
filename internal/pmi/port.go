package pmi

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gorun-hpc/gorun/internal/accept"
)

// PMI over TCP (Hydra's -pmi-port, and gorun's remote ranks): the rank dials PMI_PORT
// (host:port) and opens with
//
//	rank → server   cmd=initack pmiid=<PMI_ID>
//	server → rank   cmd=initack
//	                cmd=set size=<N>
//	                cmd=set rank=<R>
//	                cmd=set debug=0
//
// after which the conversation is the usual PMI-1 one (init, get_maxes, …). gorun's own
// rendezvous opens with Auth's exchange instead (auth.go).

// portTimeout bounds, on the rank's side, connecting and the opening (initack, Auth).
const portTimeout = 30 * time.Second

// dialPort joins the job at PMI_PORT with PMI_ID.
func dialPort(getenv func(string) string) (*Client, error) {
	return DialPort(getenv, "")
}

// DialPort joins the job at PMI_PORT with PMI_ID, proving with token (if not empty) that
// this rank is the one the server expects (see PortToken).
func DialPort(getenv func(string) string, token string) (*Client, error) {
	id, err := strconv.Atoi(getenv("PMI_ID"))
	if err != nil || id < 0 {
		return nil, fmt.Errorf("pmi: PMI_PORT is set but PMI_ID=%q is not a rank", getenv("PMI_ID"))
	}
	conn, err := net.DialTimeout("tcp", getenv("PMI_PORT"), portTimeout)
	if err != nil {
		return nil, fmt.Errorf("pmi: connect to PMI_PORT=%s: %w", getenv("PMI_PORT"), err)
	}
	return Join(conn, id, token)
}

// PortToken is what rank proves it holds the job's key with when it joins over TCP: an
// HMAC of the rank under the key. A server that knows the key (gorun) accepts only ranks
// that present it, so a stranger that reaches its port can neither take a rank's place nor
// read the key-value space.
func PortToken(key []byte, rank int) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "gorun-pmi-port:%d", rank)
	return hex.EncodeToString(m.Sum(nil))
}

// WatchToken is what a rank that gorun started on another host sends on its watch
// connection (GORUN_WATCH) after its rank, proving it holds the job's key: an HMAC of the
// rank under the key, distinct from PortToken's.
func WatchToken(key []byte, rank int) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "gorun-watch:%d", rank)
	return hex.EncodeToString(m.Sum(nil))
}

// Join runs the PMI-over-a-stream opening (initack with id, and token if not empty) and the
// PMI-1 handshake over conn, a connection to a server that ServePort serves. The Client owns
// conn from now on; it is closed if Join fails.
func Join(conn net.Conn, id int, token string) (*Client, error) {
	c := &Client{conn: conn, rd: newLineReader(conn), buf: make([]byte, 0, MaxLine)}
	conn.SetDeadline(time.Now().Add(portTimeout))
	if err := c.initack(id, token); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	if err := c.handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// initack sends the opening and reads the server's initack and settings.
func (c *Client) initack(id int, token string) error {
	req := msg("initack", "pmiid", strconv.Itoa(id))
	if token != "" {
		req = msg("initack", "pmiid", strconv.Itoa(id), "token", token)
	}
	var err error
	if c.buf, err = writeMessage(c.conn, c.buf, req); err != nil {
		return fmt.Errorf("pmi: send initack: %w", err)
	}
	r, err := readMessage(c.rd)
	if err != nil || r.Cmd != "initack" {
		return fmt.Errorf("pmi: initack answered with %q (%v)", r, err)
	}
	return c.readSettings()
}

// readSettings reads the settings that follow the server's initack.
func (c *Client) readSettings() error {
	c.rank, c.size = -1, -1
	// The settings end with debug; size and rank come before it.
	for {
		r, err := readMessage(c.rd)
		if err != nil || r.Cmd != "set" {
			return fmt.Errorf("pmi: after initack got %q (%v)", r, err)
		}
		if v, ok := r.Get("size"); ok {
			if c.size, err = strconv.Atoi(v); err != nil || c.size < 1 {
				return fmt.Errorf("pmi: set size=%q", v)
			}
		}
		if v, ok := r.Get("rank"); ok {
			if c.rank, err = strconv.Atoi(v); err != nil || c.rank < 0 {
				return fmt.Errorf("pmi: set rank=%q", v)
			}
		}
		if _, ok := r.Get("debug"); ok {
			break
		}
	}
	if c.size < 1 || c.rank < 0 || c.rank >= c.size {
		return fmt.Errorf("pmi: initack gave rank %d of %d", c.rank, c.size)
	}
	return nil
}

// Connections ServePort has accepted but not yet authenticated (initack, Auth) are bounded
// in number and time: a stranger that opens many holds at most maxOpening of them, each for
// at most openTimeout, while further connections wait in the listen backlog, where a
// burst of real ranks waits too rather than being refused.
const (
	maxOpening  = 64
	openTimeout = 5 * time.Second
)

// ServePort accepts ranks that join over a stream listener (PMI_PORT, with PMI_ID their
// rank; or gorun's rendezvous with ServerConfig.Auth), runs their opening (initack, or
// Auth's exchange) and serves each connection as ServeConn does, reporting its end to done:
// exactly one call per accepted connection, with rank -1 for one that failed its opening
// (and so never claimed a rank: only a connection that did can put, get, finalize or
// abort). It returns nil once ln is closed, or the accept error that stopped it; temporary
// accept errors are waited out (package accept). Connections being served go on until they
// end or ctx does; ctx also stops waiting for an opening slot.
func (s *Server) ServePort(ctx context.Context, ln net.Listener, done func(rank int, end End, err error)) error {
	opening := make(chan struct{}, maxOpening)
	return accept.Loop(ln, func(nc net.Conn) {
		select {
		case opening <- struct{}{}:
		case <-ctx.Done():
			nc.Close()
			done(-1, End{Kind: EndClosed}, context.Cause(ctx))
			return
		}
		go func() {
			rank, conn, err := s.acceptInitack(nc)
			if err != nil {
				nc.Close() // before the slot is free: the next opening sees it closed
			}
			<-opening
			if err != nil {
				done(-1, End{Kind: EndClosed}, err)
				return
			}
			end, err := s.ServeConn(ctx, rank, conn)
			done(rank, end, err)
		}()
	})
}

// acceptInitack runs a connection's opening: with Auth, the peer check and the challenge;
// then the rank's initack (with its PortToken when the server has a Key, its proof with an
// Auth secret) and the server's answer. It returns the rank and the connection to serve
// (which keeps what was read ahead). It takes at most openTimeout.
func (s *Server) acceptInitack(nc net.Conn) (int, net.Conn, error) {
	nc.SetDeadline(time.Now().Add(s.openTimeout))
	var ch *challenge
	rd := newLineReader(nc)
	if s.auth != nil {
		if err := s.checkPeer(nc); err != nil {
			return 0, nil, err
		}
		var err error
		if ch, err = s.sendChallenge(nc, rd); err != nil {
			return 0, nil, err
		}
	}
	r, err := readMessage(rd)
	if err != nil || r.Cmd != "initack" {
		return 0, nil, fmt.Errorf("pmi: connection from %s opened with %q (%v)", addrOf(nc), r, err)
	}
	v, _ := r.Get("pmiid")
	rank, err := strconv.Atoi(v)
	if err != nil || rank < 0 || rank >= s.size {
		return 0, nil, fmt.Errorf("pmi: initack with pmiid=%q from %s", v, addrOf(nc))
	}
	if len(s.key) > 0 {
		token, _ := r.Get("token")
		if !hmac.Equal([]byte(token), []byte(PortToken(s.key, rank))) {
			return 0, nil, fmt.Errorf("%w: connection from %s claiming rank %d does not hold the job key", ErrUnauthenticated, addrOf(nc), rank)
		}
	}
	ack := msg("initack")
	if s.auth != nil && s.auth.Secret != nil {
		proof, err := s.checkProof(nc, ch, r, rank)
		if err != nil {
			return 0, nil, err
		}
		ack = msg("initack", "proof", proof)
	}
	var buf []byte
	for _, m := range []Message{ack, msg("set", "size", strconv.Itoa(s.size)),
		msg("set", "rank", strconv.Itoa(rank)), msg("set", "debug", "0")} {
		if buf, err = writeMessage(nc, buf[:0], m); err != nil {
			return 0, nil, err
		}
	}
	nc.SetDeadline(time.Time{})
	return rank, &bufferedConn{Conn: nc, rd: rd}, nil
}

// bufferedConn reads through the reader that already consumed the start of the stream.
type bufferedConn struct {
	net.Conn
	rd *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.rd.Read(p) }
