// Package sock carries messages over stream sockets: TCP between nodes, and Unix-domain
// sockets between ranks of one node when they are forced to use the kernel-mediated path (the
// reference text's "postal service") instead of shared memory.
//
// One connection per pair of ranks. Every connection begins with a handshake that proves both
// ends hold the job's secret key (see handshake.go). Frames are a fixed little-endian header
// (Header, header.go) followed by the payload, written with one vectored write; TCP_NODELAY is
// set. Messages up to the eager limit travel whole; larger ones by rendezvous (RTS, CTS, DATA),
// and the DATA frame is read straight into the matched receive buffer.
package sock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/gorun-hpc/gorun/internal/accept"
	"github.com/gorun-hpc/gorun/transport"
)

// Config is what a Net needs to know about its rank and job.
type Config struct {
	Self int
	// Key is the job's secret: both ends of every connection prove they hold it.
	Key []byte
	// EagerLimit: messages up to this many bytes travel eagerly; it must not exceed
	// transport.MaxEager. Zero means DefaultEagerLimit.
	EagerLimit int
	Sink       transport.Sink
	// Refused, if set, is told of every connection dropped because it failed the handshake
	// (who connected, and why), from the goroutine that accepted it.
	Refused func(from net.Addr, err error)
}

// DefaultEagerLimit is where sockets switch from eager to rendezvous when nothing is tuned.
const DefaultEagerLimit = 64 << 10

// Net is one rank's sockets of one network ("tcp" or "unix"): a listener and the connections
// to its peers. It is safe for concurrent use.
type Net struct {
	cfg     Config
	network string
	ln      net.Listener

	// known is closed once Connect has said which ranks may connect: a peer can dial before
	// this rank gets there, and its handshake waits for it.
	known     chan struct{}
	knownOnce sync.Once

	mu         sync.Mutex
	conns      map[int]*conn
	expected   map[int]bool  // ranks whose connection this side accepts and has not yet got
	arrived    chan struct{} // signalled when a connection is accepted
	closed     bool
	goroutines sync.WaitGroup // accept loop and every connection's goroutines

	// Refused counts connections dropped because their handshake failed.
	refused     atomic.Int64
	lastRefusal atomic.Value // error
}

// Listen opens the listener of a Net. For "tcp", addr is host:port (port 0 picks one); for
// "unix", a socket path or an abstract name starting with "@".
func Listen(network, addr string, cfg Config) (*Net, error) {
	if cfg.EagerLimit == 0 {
		cfg.EagerLimit = DefaultEagerLimit
	}
	if cfg.EagerLimit < 0 || cfg.EagerLimit > transport.MaxEager {
		return nil, fmt.Errorf("sock: eager limit %d outside [0, %d]", cfg.EagerLimit, transport.MaxEager)
	}
	if len(cfg.Key) == 0 {
		return nil, errors.New("sock: no job key")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("sock: listen %s %s: %w", network, addr, err)
	}
	n := &Net{
		cfg: cfg, network: network, ln: ln,
		conns:    make(map[int]*conn),
		expected: make(map[int]bool),
		arrived:  make(chan struct{}, 1),
		known:    make(chan struct{}),
	}
	n.goroutines.Add(1)
	go func() { defer n.goroutines.Done(); n.acceptLoop() }()
	return n, nil
}

// Addr is the address peers dial.
func (n *Net) Addr() string { return n.ln.Addr().String() }

// Port is the TCP port of the listener (0 for other networks).
func (n *Net) Port() int {
	if a, ok := n.ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Refused reports how many connections were dropped because they failed the handshake, and
// the last reason.
func (n *Net) Refused() (int64, error) {
	err, _ := n.lastRefusal.Load().(error)
	return n.refused.Load(), err
}

// Connect establishes the connections of this rank: it dials every peer in dial (rank → the
// addresses it listens on, best first) and waits for every rank in accept to dial in. It
// returns when all are up and authenticated, or with an error when ctx ends first.
func (n *Net) Connect(ctx context.Context, dial map[int][]string, accept []int) error {
	n.mu.Lock()
	for _, r := range accept {
		if _, ok := n.conns[r]; !ok {
			n.expected[r] = true
		}
	}
	n.mu.Unlock()
	n.knownOnce.Do(func() { close(n.known) })

	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs error
	for peer, addrs := range dial {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.dial(ctx, peer, addrs); err != nil {
				errMu.Lock()
				errs = multierror.Append(errs, err)
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if errs != nil {
		return errs
	}
	for {
		n.mu.Lock()
		missing := len(n.expected)
		n.mu.Unlock()
		if missing == 0 {
			return nil
		}
		select {
		case <-n.arrived:
		case <-ctx.Done():
			return fmt.Errorf("sock: %d peers did not connect: %w", missing, ctx.Err())
		}
	}
}

// addrTimeout bounds one attempt at one of a peer's addresses, so that an address this host
// cannot reach (another network's, a firewalled one) costs little before the next is tried.
const addrTimeout = 3 * time.Second

// dial connects to peer at the first of its addresses that answers and passes the handshake
// (an address that reaches some other process, or none, fails it), retrying the list while
// the peer may not be listening yet.
func (n *Net) dial(ctx context.Context, peer int, addrs []string) error {
	var errs error
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		for _, addr := range addrs {
			err := n.dialOne(ctx, peer, addr)
			if err == nil {
				return nil
			}
			errs = multierror.Append(errs, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sock: connect to rank %d: %w", peer, errs)
		case <-time.After(delay):
		}
	}
}

func (n *Net) dialOne(ctx context.Context, peer int, addr string) error {
	actx, cancel := context.WithTimeout(ctx, addrTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(actx, n.network, addr)
	if err != nil {
		return err
	}
	if err = initiate(nc, n.cfg.Key, n.cfg.Self, peer); err != nil {
		nc.Close()
		return fmt.Errorf("%s: %w", addr, err)
	}
	return n.add(peer, nc)
}

// maxHandshakes caps the connections in their handshake at once: a stranger that opens
// connections and says nothing holds a slot each for at most handshakeTimeout, and beyond
// the cap further connections wait in the kernel's backlog, so it can neither exhaust this
// rank's descriptors nor keep a real peer's connection from being accepted for long.
const maxHandshakes = 64

// acceptLoop accepts connections until the listener closes, riding out temporary errors
// (out of descriptors, say), and runs each handshake on a goroutine of its own.
func (n *Net) acceptLoop() {
	slots := make(chan struct{}, maxHandshakes)
	accept.Loop(n.ln, func(nc net.Conn) {
		slots <- struct{}{} // frees within handshakeTimeout
		n.goroutines.Add(1)
		go func() {
			defer n.goroutines.Done()
			defer func() { <-slots }()
			n.handshake(nc)
		}()
	})
}

// handshake authenticates an accepted connection and installs it, or closes and reports it.
func (n *Net) handshake(nc net.Conn) {
	from, err := acceptHandshake(nc, n.cfg.Key, n.cfg.Self, n.isExpected)
	if err == nil {
		err = n.add(from, nc)
	}
	if err != nil {
		nc.Close()
		n.refused.Add(1)
		n.lastRefusal.Store(err)
		if n.cfg.Refused != nil {
			n.cfg.Refused(nc.RemoteAddr(), err)
		}
	}
}

func (n *Net) isExpected(rank int) bool {
	select {
	case <-n.known:
	case <-time.After(handshakeTimeout):
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.expected[rank]
}

// add installs an authenticated connection to peer and starts its goroutines.
func (n *Net) add(peer int, nc net.Conn) error {
	if tc, ok := nc.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("sock: closed")
	}
	if _, dup := n.conns[peer]; dup {
		return fmt.Errorf("sock: second connection from rank %d", peer)
	}
	delete(n.expected, peer)
	c := newConn(nc, n.cfg.Self, peer, n.cfg.Sink, n.cfg.EagerLimit)
	n.conns[peer] = c
	c.start(&n.goroutines)
	select {
	case n.arrived <- struct{}{}:
	default:
	}
	return nil
}

// PeerAddr returns the address of the connection to peer ("" if there is none).
func (n *Net) PeerAddr(peer int) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.conns[peer]; ok {
		return c.nc.RemoteAddr().String()
	}
	return ""
}

// Endpoint returns the way to peer, or nil if there is no connection to it.
func (n *Net) Endpoint(peer int) transport.Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.conns[peer]; ok {
		return c
	}
	return nil
}

// Close ends every connection in order (each side says Bye after its last frame), closes the
// listener and waits for every goroutine. Call it once no more messages are sent or expected.
func (n *Net) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.knownOnce.Do(func() { close(n.known) })
	conns := make([]*conn, 0, len(n.conns))
	for _, c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	err := n.ln.Close()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.close(closeTimeout) }()
	}
	wg.Wait()
	n.goroutines.Wait()
	return err
}

// closeTimeout bounds how long Close waits for a peer's Bye.
const closeTimeout = 5 * time.Second
