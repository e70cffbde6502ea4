package shm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/view"
	"github.com/gorun-hpc/gorun/transport"
)

// Config describes this rank's node and how to size and use the segment. Zero sizes mean the
// defaults below.
type Config struct {
	Sink  transport.Sink
	Self  int   // world rank of this process
	Local []int // world ranks on this node, ascending; includes Self
	Pids  []int // pid of each rank in Local
	JobID string
	Line  int // cache line size (topology)

	RingBytes  int // record area of each ring
	BulkBytes  int // data area of each bulk pipe
	Chunk      int // bytes moved per step of the pipelined copy
	EagerLimit int // largest message sent eagerly through the ring
	// CMAMin and CMAMax bound the message sizes offered by single copy (process_vm_readv);
	// CMAMax 0 means never. DisableCMA also skips the probe.
	CMAMin, CMAMax int
	DisableCMA     bool
	// Summary: when the node has more local ranks than this, a receiver looks at its summary
	// bitmap instead of scanning every ring (0: DefaultSummaryAbove).
	SummaryAbove int
	// Fallback forces the /dev/shm file instead of memfd_create.
	Fallback bool
	// BatchLimit > 1 turns on batching of eager messages (the reference text's aggregation):
	// a sender publishes its eager records to a peer BatchLimit at a time, or when
	// FlushTimeout (default DefaultFlushTimeout) has passed since the first of them, or when
	// it sends anything else. It trades latency (about FlushTimeout/2 added) for message rate.
	BatchLimit   int
	FlushTimeout time.Duration
	// Timeout bounds setup (fetching the segment, waiting for every local rank to map it).
	Timeout time.Duration
	// CollSlot is the size of each rank's slot in the collective arena (two halves).
	CollSlot int
	// Nonce is a secret every local rank knows and other users do not: it is the random part
	// of the names the segment is handed over by (the abstract socket, the /dev/shm file),
	// so that no one can take them first and block the job. The same on every local rank;
	// "" (tests) leaves the names without one.
	Nonce string
}

// Defaults, measured on a 2-core AMD EPYC (Zen 5) KVM guest (see docs/benchmarks.md).
const (
	DefaultRingBytes    = 256 << 10
	DefaultBulkBytes    = 512 << 10
	DefaultChunk        = 64 << 10
	DefaultEagerLimit   = 16 << 10
	DefaultSummaryAbove = 8
	DefaultFlushTimeout = 50 * time.Microsecond
	DefaultCollSlot     = 512 << 10
)

// fillSizes sets the defaults of the size fields.
func (c *Config) fillSizes() {
	if c.Line == 0 {
		c.Line = 64
	}
	if c.RingBytes == 0 {
		c.RingBytes = DefaultRingBytes
	}
	if c.BulkBytes == 0 {
		c.BulkBytes = DefaultBulkBytes
	}
	if c.Chunk == 0 {
		c.Chunk = DefaultChunk
	}
	if c.EagerLimit == 0 {
		c.EagerLimit = DefaultEagerLimit
	}
	if c.SummaryAbove == 0 {
		c.SummaryAbove = DefaultSummaryAbove
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.CollSlot == 0 {
		c.CollSlot = DefaultCollSlot
	}
}

// offersCMA reports whether this rank may send by single copy at all (and so must let its
// peers read its memory).
func (c *Config) offersCMA() bool { return !c.DisableCMA && c.CMAMax > 0 }

// eagerMax is the largest eager message: the configured limit, or what a ring record can
// carry if that is less.
func (c *Config) eagerMax() int {
	l := c.Line
	ringCap := (c.RingBytes + l - 1) / l * l
	return min(c.EagerLimit, ringCap/2/l*l-recHeaderLen)
}

func (c *Config) fill() error {
	c.fillSizes()
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if len(c.Local) != len(c.Pids) || !slices.Contains(c.Local, c.Self) {
		return fmt.Errorf("shm: local ranks %v, pids %v, self %d", c.Local, c.Pids, c.Self)
	}
	if c.Chunk <= 0 || c.BulkBytes < c.Chunk {
		return fmt.Errorf("shm: chunk %d with bulk pipes of %d bytes", c.Chunk, c.BulkBytes)
	}
	return nil
}

// Transport is the shared-memory transport of one rank: its endpoints to the other ranks of
// the node, and the progress engine (transport.Poller) that a waiting goroutine drives. Send
// is safe for concurrent use; Poll, Sleep and Check are called by one goroutine at a time
// (the rank's driver); Wake by anyone.
type Transport struct {
	cfg   Config
	seg   *segment
	lay   layout
	me    int // local index
	sink  transport.Sink
	peers []*peer // by local index; nil for this rank
	list  []*peer // the non-nil peers

	// This rank's control block.
	sleeping   *atomic.Uint32
	bell       *doorbell
	summary    []*atomic.Uint64 // bit i: ring i to us may hold records (set by rank i, and by us in drain)
	useSummary bool

	maxEager int
	cmaProbe []byte // what peers read when they probe; pinned (pinner) until Close

	arena *Arena // made on first use

	// Driver-only state of Check.
	lastCheck time.Time
	pollFds   []unix.PollFd
	pinner    runtime.Pinner // pins cmaProbe
}

// New creates (at the node's first rank) or joins the node segment and returns the
// transport. Every local rank must call it.
func New(cfg Config) (*Transport, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	n := len(cfg.Local)
	me := slices.Index(cfg.Local, cfg.Self)
	lay, err := newLayout(n, cfg.Line, cfg.RingBytes, cfg.BulkBytes, cfg.CollSlot)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(cfg.Timeout)
	bell, err := newDoorbell()
	if err != nil {
		return nil, fmt.Errorf("shm: doorbell: %w", err)
	}
	seg, bells, err := shareSegment(cfg, &lay, bell.fd, deadline)
	if err != nil {
		bell.close()
		return nil, fmt.Errorf("shm: %w", err)
	}
	if bells[me] != bell.fd {
		unix.Close(bells[me]) // our own doorbell, passed back to us
	}
	bells[me] = -1
	t := &Transport{cfg: cfg, seg: seg, lay: lay, me: me, sink: cfg.Sink, bell: bell}
	t.init(bells)
	t.prefault()
	if err := t.meet(deadline); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// shareSegment creates the segment (at the node's first rank) or fetches it, exchanging
// doorbells with the other local ranks; it returns the segment and every local rank's doorbell
// descriptor, in local-rank order.
func shareSegment(cfg Config, lay *layout, bell int, deadline time.Time) (*segment, []int, error) {
	me := slices.Index(cfg.Local, cfg.Self)
	leaderPid := cfg.Pids[0]
	name := segmentSocket(&cfg)
	if me != 0 {
		seg, bells, err := fetchSegment(name, leaderPid, me, bell, len(cfg.Local), deadline)
		if err != nil {
			return nil, nil, err
		}
		if *lay, err = joinLayout(seg.mem, len(cfg.Local), cfg.Chunk); err != nil {
			seg.unmap()
			closeAll(bells)
			return nil, nil, err
		}
		return seg, bells, nil
	}
	seg, fd, err := createSegment(lay.size, cfg.Fallback, segmentFile(&cfg))
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(fd)
	lay.writeHeader(seg.mem)
	bells, err := serveSegment(name, fd, seg.memfd, cfg.Pids, bell, deadline)
	if err != nil {
		seg.unmap()
		return nil, nil, err
	}
	return seg, bells, nil
}

// init builds the view of the segment: control words and one peer per other local rank.
func (t *Transport) init(bells []int) {
	mem, lay := t.seg.mem, &t.lay
	t.sleeping = view.Uint32At(mem, lay.ctl(t.me)+ctlSleepingOff)
	for w := 0; w < (lay.nlocal+63)/64; w++ {
		t.summary = append(t.summary, view.Uint64At(mem, lay.summaryWord(t.me, 64*w)))
	}
	t.useSummary = lay.nlocal-1 > t.cfg.SummaryAbove
	t.peers = make([]*peer, lay.nlocal)
	for i := range lay.nlocal {
		if i == t.me {
			continue
		}
		p := newPeer(t, i, bells[i])
		t.peers[i] = p
		t.list = append(t.list, p)
	}
	// The layout may come from the leader's header (its sizes win); eagerMax must agree
	// with the rings' capacity.
	t.cfg.RingBytes, t.cfg.BulkBytes, t.cfg.Line = lay.ringCap, lay.bulkCap, lay.line
	t.maxEager = t.cfg.eagerMax()
}

// prefaultLimit is the largest node segment whose rings, bulk pipes and arena every rank maps
// in at start (prefault); a larger one (more than about 12 local ranks at the default sizes)
// is left to fault in as it is used, so that pairs that never talk cost no memory.
const prefaultLimit = 64 << 20

// prefault maps in, before the first message, every page this rank will touch: its rings and
// bulk pipes to and from each local rank, and the collective arena. Left to the first touch,
// each page is a fault in the middle of a message (several µs in a virtual machine): the
// first few thousand small messages between two ranks averaged 0.8 µs one way instead of
// 0.45, until they had been once round the ring. MADV_POPULATE_WRITE (Linux 5.14) does what
// a write to every page would without writing; where it is missing the pages fault in
// lazily, as before, so its error is of no consequence.
func (t *Transport) prefault() {
	l := &t.lay
	if l.nlocal == 1 || l.size > prefaultLimit {
		return
	}
	page := os.Getpagesize()
	populate := func(off, size int) { // madvise takes whole pages
		lo, hi := off&^(page-1), min((off+size+page-1)&^(page-1), len(t.seg.mem))
		_ = unix.Madvise(t.seg.mem[lo:hi], unix.MADV_POPULATE_WRITE)
	}
	for i := range l.nlocal {
		if i != t.me {
			populate(l.ring(t.me, i), l.ringSize)
			populate(l.ring(i, t.me), l.ringSize)
			populate(l.bulk(t.me, i), l.bulkSize)
			populate(l.bulk(i, t.me), l.bulkSize)
		}
	}
	populate(l.collOff, l.commOff-l.collOff) // the communicator arenas fault in when taken
}

// meet publishes this rank's probe address in its control block and waits until every local
// rank has mapped the segment and published its own (the header's mapped count); then the
// single-copy probe can read a peer. New returns only once the whole node has met.
func (t *Transport) meet(deadline time.Time) error {
	mem, lay := t.seg.mem, &t.lay
	ctl := lay.ctl(t.me)
	if t.cfg.offersCMA() {
		// Only a rank that may offer single copy exposes itself to its peers' reads.
		allowPtraceByPeers()
		t.cmaProbe = append([]byte(nil), cmaPattern[:]...)
		t.pinner.Pin(&t.cmaProbe[0])
		view.Uint64At(mem, ctl+ctlCMAAddrOff).Store(addrOf(t.cmaProbe))
	}
	mapped := mappedCount(mem)
	mapped.Add(1) // publishes the probe address (see layout.go)
	for mapped.Load() < uint32(lay.nlocal) {
		if time.Now().After(deadline) {
			return fmt.Errorf("shm: only %d of %d local ranks mapped the segment", mapped.Load(), lay.nlocal)
		}
		if err := t.checkPeersAlive(); err != nil {
			return fmt.Errorf("shm: waiting for local ranks: %w", err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	state := cmaUnavailable
	if !t.cfg.DisableCMA && len(t.list) > 0 {
		state = t.probeCMA(t.list[0])
	}
	view.Uint32At(mem, ctl+ctlCMAStateOff).Store(state)
	return nil
}

// probeCMA reads peer's probe pattern with process_vm_readv.
func (t *Transport) probeCMA(p *peer) uint32 {
	addr := view.Uint64At(t.seg.mem, t.lay.ctl(p.idx)+ctlCMAAddrOff).Load()
	if addr == 0 {
		return cmaUnavailable
	}
	got := make([]byte, len(cmaPattern))
	if err := cmaRead(p.pid, addr, got); err != nil || string(got) != string(cmaPattern[:]) {
		return cmaUnavailable
	}
	return cmaWorks
}

// checkPeersAlive reports a local rank whose process has gone (used while waiting at start).
func (t *Transport) checkPeersAlive() error {
	for _, p := range t.list {
		if err := unix.Kill(p.pid, 0); errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("rank %d (pid %d) is gone", p.world, p.pid)
		}
	}
	return nil
}

// Endpoint returns the way to world rank r on this node, or nil.
func (t *Transport) Endpoint(r int) transport.Endpoint {
	i := slices.Index(t.cfg.Local, r)
	if i < 0 || t.peers[i] == nil {
		return nil
	}
	return t.peers[i]
}

// EagerLimit is the largest message sent eagerly.
func (t *Transport) EagerLimit() int { return t.maxEager }

// CMA reports whether this rank's probe read succeeded.
func (t *Transport) CMA() bool {
	return view.Uint32At(t.seg.mem, t.lay.ctl(t.me)+ctlCMAStateOff).Load() == cmaWorks
}

// Close completes whatever is still in flight with transport.ErrClosed, releases the peers'
// resources and unmaps the segment. Call it once no goroutine drives the transport and none
// will again, and no goroutine is in Send, Fetch or Wake (the rank's Close holds the driving
// role and has waited out every entry section); after it nothing may touch the transport.
func (t *Transport) Close() error {
	for _, p := range t.list {
		p.close()
	}
	t.pinner.Unpin()
	t.bell.close()
	return t.seg.unmap()
}
