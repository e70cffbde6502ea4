package launcher

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/internal/accept"
	"github.com/gorun-hpc/gorun/internal/netaddr"
	"github.com/gorun-hpc/gorun/internal/pmi"
)

// Ranks on other hosts cannot inherit a socket: they join over TCP. gorun
// listens on two ports, on every interface (or on GORUN_IFACE's first
// address):
//
//   - the PMI port: the job's PMI server (the one local ranks reach through
//     their socketpair) serves ranks that dial PMI_PORT=host:port and open
//     with PMI_ID=<rank> (pmi.Server.ServePort);
//   - the watch port: each remote rank connects to GORUN_WATCH=host:port,
//     sends "<rank> <token>\n" (token: pmi.WatchToken of the job key, which
//     the rank read from its standard input) and keeps the connection open;
//     gorun closes every such connection when the job ends, normally or not
//     (and the kernel does if gorun dies), and a rank whose connection closes
//     kills itself. So a remote rank never outlives gorun, although ssh does
//     not pass signals on.
//
// Both ports are open to strangers, so both authenticate: a PMI connection
// must present the rank's pmi.PortToken, a watch connection its
// pmi.WatchToken. A connection that fails is closed and forgotten. Each
// port has at most maxOpening connections that have not yet authenticated,
// each for at most a few seconds; further ones wait in the listen backlog.
//
// The host part of both addresses is, per remote host, Config.PMIAddr if
// set; else GORUN_IFACE's address; else the local address of the route to
// that host (what the kernel would use to reach it); else the first
// non-loopback address of this machine.

// Watch connections that have not yet authenticated: at most maxOpening at
// once, each for at most watchLineTimeout; a line is at most watchLineMax
// bytes.
const (
	maxOpening       = 64
	watchLineTimeout = 5 * time.Second
	watchLineMax     = 96
)

// maxServeErrs bounds how many problems with connections to the PMI port
// (strangers, broken openings) the job's report keeps.
const maxServeErrs = 8

// remoteService is the job's side of its remote ranks. Its goroutines are
// owned by the job (job.wg): the PMI accept loop and each PMI connection
// (through trackingListener), the watch accept loop and each watch
// connection's opening.
type remoteService struct {
	j       *job
	pmiLn   *trackingListener
	watchLn net.Listener
	// advertise is the host remote ranks dial, by host name.
	advertise map[string]string
	key       []byte        // the job key, which watch lines prove
	opening   chan struct{} // a slot per watch connection being authenticated
	lineLimit time.Duration // how long a watch connection may take to prove itself

	mu sync.Mutex // guards the fields below
	// watches are the authenticated watch connections, one per remote rank at
	// most, kept open until the job ends; pending are those still to say who
	// they are. watchClosed is set when the job ends, after which new ones
	// are refused.
	watches     map[int]net.Conn
	pending     map[net.Conn]bool
	watchClosed bool
	serveErrs   []error
	moreErrs    int // problems beyond maxServeErrs
}

// newRemoteService opens the listeners and picks the addresses to
// advertise to each remote host.
func newRemoteService(j *job) (*remoteService, error) {
	bind, err := bindAddr(os.Getenv("GORUN_IFACE"))
	if err != nil {
		return nil, err
	}
	pmiLn, err := net.Listen("tcp", net.JoinHostPort(bind, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen for remote ranks' PMI: %w", err)
	}
	watchLn, err := net.Listen("tcp", net.JoinHostPort(bind, "0"))
	if err != nil {
		pmiLn.Close()
		return nil, fmt.Errorf("listen for remote ranks' watch connections: %w", err)
	}
	key, err := hex.DecodeString(j.key)
	if err != nil || len(key) == 0 {
		pmiLn.Close()
		watchLn.Close()
		return nil, errors.New("remote ranks: the job has no key")
	}
	rs := &remoteService{j: j, watchLn: watchLn, advertise: map[string]string{}, key: key,
		opening: make(chan struct{}, maxOpening), lineLimit: watchLineTimeout, watches: map[int]net.Conn{}, pending: map[net.Conn]bool{},
		pmiLn: &trackingListener{Listener: pmiLn, wg: &j.wg, conns: map[*trackedConn]bool{}}}
	for _, s := range j.slots {
		if !s.remote || rs.advertise[s.host] != "" {
			continue
		}
		switch {
		case j.cfg.PMIAddr != "":
			rs.advertise[s.host] = j.cfg.PMIAddr
		case bind != "":
			rs.advertise[s.host] = bind
		default:
			rs.advertise[s.host] = routeSource(s.host)
		}
	}
	return rs, nil
}

func (rs *remoteService) pmiAddr(host string) string {
	return net.JoinHostPort(rs.advertise[host], strconv.Itoa(rs.pmiLn.Addr().(*net.TCPAddr).Port))
}

func (rs *remoteService) watchAddr(host string) string {
	return net.JoinHostPort(rs.advertise[host], strconv.Itoa(rs.watchLn.Addr().(*net.TCPAddr).Port))
}

// start serves both ports until stop. Every goroutine is in j.wg.
func (rs *remoteService) start(ctx context.Context) {
	rs.j.wg.Go(func() { rs.j.server.ServePort(ctx, rs.pmiLn, rs.pmiDone) })
	rs.j.wg.Go(rs.acceptWatches)
}

// pmiDone is told how each connection to the PMI port ended; every
// connection trackingListener accepted gets exactly one call. An abort is
// the supervisor's business and already reached it through the server's
// Aborted; other problems only go in the job's report.
func (rs *remoteService) pmiDone(rank int, end pmi.End, err error) {
	defer rs.j.wg.Done()
	if end.Kind == pmi.EndAborted {
		return // the server's Aborted reported it
	}
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.serveErrs) < maxServeErrs {
		rs.serveErrs = append(rs.serveErrs, fmt.Errorf("PMI port: %w", err))
	} else {
		rs.moreErrs++
	}
}

// acceptWatches keeps every watch connection that proves it is a remote
// rank's; it returns once closeWatches has closed the listener.
func (rs *remoteService) acceptWatches() {
	accept.Loop(rs.watchLn, func(nc net.Conn) {
		rs.opening <- struct{}{} // freed within lineLimit, or by closeWatches
		rs.mu.Lock()
		if rs.watchClosed {
			rs.mu.Unlock()
			<-rs.opening
			nc.Close()
			return
		}
		rs.pending[nc] = true
		rs.mu.Unlock()
		rs.j.wg.Go(func() {
			r, ok := rs.readWatch(nc)
			<-rs.opening
			rs.mu.Lock()
			defer rs.mu.Unlock()
			delete(rs.pending, nc)
			if !ok || rs.watchClosed || rs.watches[r] != nil {
				nc.Close() // refused, or a second connection for one rank
				return
			}
			rs.watches[r] = nc
		})
	})
}

// readWatch reads a watch connection's line and returns the rank it proves.
func (rs *remoteService) readWatch(nc net.Conn) (int, bool) {
	nc.SetReadDeadline(time.Now().Add(rs.lineLimit))
	line, err := bufio.NewReaderSize(io.LimitReader(nc, watchLineMax), watchLineMax).ReadSlice('\n')
	if err != nil {
		return -1, false
	}
	r, ok := parseWatchLine(line, rs.key, func(r int) bool { return r < len(rs.j.slots) && rs.j.slots[r].remote })
	return r, ok && nc.SetReadDeadline(time.Time{}) == nil
}

// parseWatchLine checks a watch line, "<rank> <token>\n": the rank must be
// one isRemote accepts and the token pmi.WatchToken(key, rank).
func parseWatchLine(line, key []byte, isRemote func(int) bool) (int, bool) {
	rest, ok := bytes.CutSuffix(line, []byte("\n"))
	if !ok || len(rest) > watchLineMax {
		return -1, false
	}
	rankField, token, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(rankField) == 0 || len(rankField) > 9 {
		return -1, false
	}
	r := 0
	for _, c := range rankField {
		if c < '0' || c > '9' {
			return -1, false
		}
		r = 10*r + int(c-'0')
	}
	if !isRemote(r) || !hmac.Equal(token, []byte(pmi.WatchToken(key, r))) {
		return -1, false
	}
	return r, true
}

// closeWatches closes every watch connection: the remote ranks still
// running kill themselves. Connections still to authenticate are closed
// too. Safe to call more than once.
func (rs *remoteService) closeWatches() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.watchClosed {
		return
	}
	rs.watchClosed = true
	rs.watchLn.Close()
	for _, nc := range rs.watches {
		nc.Close()
	}
	for nc := range rs.pending {
		nc.Close()
	}
}

// stopAccepting closes the PMI listener; connections being served go on.
func (rs *remoteService) stopAccepting() { rs.pmiLn.Close() }

// cutOff closes every PMI connection still open (an opening in progress
// does not watch ctx).
func (rs *remoteService) cutOff() { rs.pmiLn.closeConns() }

// problems returns what went wrong on the PMI port, for the job's report.
func (rs *remoteService) problems() []error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	errs := slices.Clone(rs.serveErrs)
	if rs.moreErrs > 0 {
		errs = append(errs, fmt.Errorf("PMI port: %d more problems", rs.moreErrs))
	}
	return errs
}

// trackingListener counts the connections it accepts in wg (each is
// released by its ServePort done call) and can close all those still open.
type trackingListener struct {
	net.Listener
	wg *sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  map[*trackedConn]bool
	closed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		nc.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: nc, l: l}
	l.conns[tc] = true
	l.wg.Add(1) // Done in remoteService.pmiDone
	return tc, nil
}

func (l *trackingListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

func (l *trackingListener) closeConns() {
	l.mu.Lock()
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// trackedConn leaves its listener's set when closed.
type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// bindAddr is the address to listen on: GORUN_IFACE's first address, or ""
// (every interface).
func bindAddr(iface string) (string, error) {
	if iface == "" {
		return "", nil
	}
	ips, err := netaddr.Interface(iface)
	if err != nil {
		return "", err
	}
	return ips[0], nil
}

// routeSource is the address of this machine that the kernel's routes use
// to reach host (a UDP socket is connected, which sends nothing), or the
// first non-loopback address of an interface that is up (IPv4 first) when
// host cannot be resolved here (an ssh alias, say); this machine's host
// name as the last resort.
func routeSource(host string) string {
	if _, h, ok := strings.Cut(host, "@"); ok { // user@host
		host = h
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	if c, err := d.Dial("udp", net.JoinHostPort(host, "9")); err == nil {
		ip := c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
		return ip.String()
	}
	if ips, _, err := netaddr.Local(); err == nil && len(ips) > 0 {
		return ips[0]
	}
	name, _ := os.Hostname()
	return name
}
