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
// after which the conversation is the usual PMI-1 one (init, get_maxes, …).

// portTimeout bounds connecting and the initack exchange.
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

// ServePort accepts ranks that join over TCP (PMI_PORT, with PMI_ID their rank) on ln,
// answers their initack, and serves each connection as ServeConn does, reporting its end to
// done. It returns when ln is closed or ctx ends; connections being served go on until they
// end (or ctx does).
func (s *Server) ServePort(ctx context.Context, ln net.Listener, done func(rank int, end End, err error)) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			rank, conn, err := s.acceptInitack(nc)
			if err != nil {
				nc.Close()
				done(-1, End{Kind: EndClosed}, err)
				return
			}
			end, err := s.ServeConn(ctx, rank, conn)
			done(rank, end, err)
		}()
	}
}

// acceptInitack reads a rank's initack and answers it; it returns the rank and the
// connection to serve (which keeps what was read ahead).
func (s *Server) acceptInitack(nc net.Conn) (int, net.Conn, error) {
	nc.SetDeadline(time.Now().Add(portTimeout))
	rd := newLineReader(nc)
	r, err := readMessage(rd)
	if err != nil || r.Cmd != "initack" {
		return 0, nil, fmt.Errorf("pmi: connection from %s opened with %q (%v)", nc.RemoteAddr(), r, err)
	}
	v, _ := r.Get("pmiid")
	rank, err := strconv.Atoi(v)
	if err != nil || rank < 0 || rank >= s.size {
		return 0, nil, fmt.Errorf("pmi: initack with pmiid=%q from %s", v, nc.RemoteAddr())
	}
	if len(s.key) > 0 {
		token, _ := r.Get("token")
		if !hmac.Equal([]byte(token), []byte(PortToken(s.key, rank))) {
			return 0, nil, fmt.Errorf("pmi: connection from %s claiming rank %d does not hold the job key", nc.RemoteAddr(), rank)
		}
	}
	var buf []byte
	for _, m := range []Message{msg("initack"), msg("set", "size", strconv.Itoa(s.size)),
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
