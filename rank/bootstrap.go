package rank

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"

	"github.com/gorun-hpc/gorun/internal/pmi"
	"github.com/gorun-hpc/gorun/topology"
	"github.com/gorun-hpc/gorun/transport/shm"
	"github.com/gorun-hpc/gorun/transport/sock"
	"github.com/gorun-hpc/gorun/tuning"
)

// Keys this runtime puts in the launcher's key-value store.
const (
	cardKeyFormat = "gorun-card-%d"
	jobKeyKey     = "gorun-job-key"
)

// bootstrap joins the job: PMI init, publish this rank's card, barrier, read every card, then
// connect to the peers.
func (w *World) bootstrap() error {
	getenv := w.cfg.Getenv
	key, err := pmi.TakeJobKey(getenv, os.Stdin)
	if err != nil {
		return err
	}
	client, rdv, key, err := joinJobKey(getenv, key, w.cfg.ConnectTimeout)
	if errors.Is(err, pmi.ErrNoLauncher) {
		return w.singleton()
	}
	if err != nil {
		return fmt.Errorf("join the job: %w", err)
	}
	w.pmi, w.rendezvous = client, rdv
	w.rank, w.size = client.Rank(), client.Size()

	machine, err := topology.Discover()
	if err != nil {
		return err
	}
	w.machine = machine
	self := card{
		pid:    os.Getpid(),
		node:   nodeID(getenv, client, rdv == nil),
		cpus:   machine.Allowed,
		usable: machine.UsableCPUs(),
	}

	if key == nil {
		if key, err = sharedKey(client); err != nil {
			return err
		}
	}
	scfg := sock.Config{Self: w.rank, Key: key, EagerLimit: sockEager(w.cfg.Tuning), Sink: w.m, Refused: w.refused}
	listen, ips, err := tcpListen(getenv)
	if err != nil {
		return err
	}
	tcp, err := sock.Listen("tcp", listen, scfg)
	if err != nil {
		return err
	}
	w.nets = append(w.nets, tcp)
	unixNet, err := sock.Listen("unix", unixName(client.KVSName(), w.rank), scfg)
	if err != nil {
		return err
	}
	w.nets = append(w.nets, unixNet)
	self.tcpPort, self.tcpIPs, self.unix = tcp.Port(), ips, unixNet.Addr()

	if err := putLong(client, fmt.Sprintf(cardKeyFormat, w.rank), self.String()); err != nil {
		return fmt.Errorf("publish card: %w", err)
	}
	if err := client.Barrier(); err != nil {
		return fmt.Errorf("start-up barrier: %w", err)
	}
	cards := make([]card, w.size)
	for r := range cards {
		if r == w.rank {
			cards[r] = self
			continue
		}
		v, err := getLong(client, fmt.Sprintf(cardKeyFormat, r))
		if err != nil {
			return fmt.Errorf("read the card of rank %d: %w", r, err)
		}
		if cards[r], err = parseCard(v); err != nil {
			return fmt.Errorf("rank %d: %w", r, err)
		}
	}
	w.buildPeers(cards)
	if w.rank == 0 && getenv("GORUN_EXPLAIN") == "1" {
		// An explicit request for diagnostics: the one place the runtime prints.
		Explain(os.Stderr, w.cfg.Tuning, ExplainSizes)
	}
	if err := w.startShm(machine.LineSize, client.KVSName(), key); err != nil {
		return err
	}
	if err := w.connect(map[string]*sock.Net{"tcp": tcp, "unix": unixNet}); err != nil {
		return err
	}
	if w.rank == 0 && getenv("GORUN_EXPLAIN") == "1" {
		w.explainPeers(os.Stderr)
	}
	return nil
}

// refusals caps how many refused connections a rank reports on stderr.
const refusals = 10

// refused reports a connection dropped because it failed the handshake. This (and
// GORUN_EXPLAIN) is where the runtime writes to stderr on its own: a process that connects to
// a rank without the job's key is an event an operator must hear of, not a program error to
// return. Every refusal is counted (Refused); the first few are reported.
func (w *World) refused(from net.Addr, err error) {
	if n := w.refusedCount.Add(1); n <= refusals {
		fmt.Fprintf(os.Stderr, "gorun: rank %d refused a connection from %v: %v\n", w.rank, from, err)
	}
}

// explainPeers writes how this rank reaches every other (GORUN_EXPLAIN=1).
func (w *World) explainPeers(out io.Writer) {
	fmt.Fprintf(out, "rank %d (node %d of %d) reaches:\n", w.rank, w.NodeOf(w.rank), w.node.nodeCount)
	for r, p := range w.peers {
		if r == w.rank {
			continue
		}
		addr := ""
		for _, n := range w.nets {
			if a := n.PeerAddr(r); a != "" {
				addr = " at " + a
			}
		}
		fmt.Fprintf(out, "  rank %d (node %d): %s%s\n", r, p.card.nodeIndex, p.path, addr)
	}
}

// startShm joins the node segment if any peer talks to this rank through shared memory. The
// nonce in the segment's names (shmNonce) derives from the job key, so another user of the
// node can neither compute them nor squat them.
func (w *World) startShm(line int, jobID string, key []byte) error {
	local := w.node.localRanks
	if len(local) < 2 || w.peers[local[0]].path != "shm" && w.peers[local[len(local)-1]].path != "shm" {
		return nil
	}
	tun := w.cfg.Tuning
	cfg := shmConfig(tun, w.node.oversubscribed)
	cfg.Sink, cfg.Self, cfg.Local, cfg.JobID, cfg.Line = w.m, w.rank, local, jobID, line
	cfg.SummaryAbove, cfg.Fallback, cfg.Timeout = tun.Summary, tun.ShmFallback, w.cfg.ConnectTimeout
	for _, r := range local {
		cfg.Pids = append(cfg.Pids, w.peers[r].card.pid)
	}
	cfg.Nonce = shmNonce(key, jobID, w.node.id, cfg.Pids[0])
	t, err := shm.New(cfg)
	if err != nil {
		return err
	}
	w.shm, w.poller = t, t
	for _, r := range local {
		if r != w.rank {
			w.peers[r].ep = t.Endpoint(r)
		}
	}
	return nil
}

// shmConfig is the shared-memory configuration a rank derives from t (startShm adds who and
// where; Explain reports what it chooses).
func shmConfig(t tuning.Params, oversubscribed bool) shm.Config {
	c := shm.Config{RingBytes: t.ShmRing, BulkBytes: t.ShmBulk, Chunk: t.ShmChunk, EagerLimit: t.ShmEager,
		BatchLimit: t.ShmBatch, FlushTimeout: t.ShmFlush}
	switch {
	case t.CMA == "off":
		c.DisableCMA = true
	case t.CMA == "on" || oversubscribed:
		// On an oversubscribed node the pipelined copy needs sender and receiver on CPUs at
		// once; a single copy needs only the receiver.
		c.CMAMin, c.CMAMax = t.CMAMin, maxMessage
	}
	return c
}

// maxMessage is the largest message a Go slice can hold: single copy has no upper bound.
const maxMessage = int(^uint(0) >> 1)

// sockEager is the sockets' eager limit a rank derives from t (bootstrap's sock.Config;
// Explain reports it).
func sockEager(t tuning.Params) int {
	if t.SockEager == 0 {
		return sock.DefaultEagerLimit
	}
	return t.SockEager
}

// nodeID is this rank's node identity: GORUN_NODE if set; else the launcher's node map
// (PMI_process_mapping, whose pattern repeats cyclically) when the launcher has one, since it
// knows where it put the ranks; else hostname and boot id.
func nodeID(getenv func(string) string, c *pmi.Client, launcherMap bool) string {
	if v := getenv(topology.NodeEnv); v != "" || !launcherMap {
		return topology.NodeID(getenv)
	}
	mapping, err := c.Get("PMI_process_mapping")
	if err != nil {
		return topology.NodeID(getenv)
	}
	nodes, err := topology.ParseProcessMapping(mapping, c.Size())
	if err != nil {
		return topology.NodeID(getenv)
	}
	return fmt.Sprintf("%s/node-%d", c.KVSName(), nodes[c.Rank()])
}

// singleton makes a world of one, for a program started without a launcher.
func (w *World) singleton() error {
	w.rank, w.size = 0, 1
	machine, err := topology.Discover()
	if err != nil {
		return err
	}
	w.machine = machine
	w.buildPeers([]card{{pid: os.Getpid(), node: topology.NodeID(w.cfg.Getenv), cpus: machine.Allowed, usable: 1}})
	return nil
}

// buildPeers fills the peer table and the node facts from every rank's card, and picks the
// path to each peer.
func (w *World) buildPeers(cards []card) {
	nodes := map[string]int{}
	for r := range cards {
		idx, ok := nodes[cards[r].node]
		if !ok {
			idx = len(nodes)
			nodes[cards[r].node] = idx
		}
		cards[r].nodeIndex = idx
	}
	me := cards[w.rank]
	w.node = nodeInfo{id: me.node, nodeCount: len(nodes)}
	// The node offers the ranks the union of their CPU sets (ranks bound one per CPU each see
	// one), capped by a cgroup quota where one bites (a rank whose usable count is below its
	// set's size).
	var nodeCPUs topology.CPUSet
	quotaCap := 0
	for r, c := range cards {
		if c.node != me.node {
			continue
		}
		w.node.localRanks = append(w.node.localRanks, r)
		nodeCPUs = nodeCPUs.Union(c.cpus)
		if c.usable < c.cpus.Count() && (quotaCap == 0 || c.usable < quotaCap) {
			quotaCap = c.usable
		}
	}
	w.node.usableCPUs = max(1, nodeCPUs.Count())
	if quotaCap > 0 {
		w.node.usableCPUs = min(w.node.usableCPUs, quotaCap)
	}
	w.node.oversubscribed = topology.Oversubscribed(len(w.node.localRanks), w.node.usableCPUs)
	w.spin, w.yields = spinPolicy(w.cfg, w.node)
	w.peers = make([]peer, len(cards))
	for r, c := range cards {
		w.peers[r] = peer{card: c, path: w.choosePath(r, c.node == me.node)}
	}
	w.peers[w.rank].ep = &selfEndpoint{m: w.m, eagerLimit: selfEagerLimit}
}

// selfEagerLimit: messages to oneself up to this size are copied into the unexpected queue
// when no receive is posted; larger ones wait for the receive and are copied once.
const selfEagerLimit = 64 << 10

// choosePath decides which transport carries messages to world rank r.
func (w *World) choosePath(r int, local bool) string {
	switch {
	case r == w.rank:
		return "self"
	case !local:
		return "tcp"
	case w.cfg.Transport == "unix":
		return "unix"
	case w.cfg.Transport == "tcp":
		return "tcp"
	default:
		return "shm"
	}
}

// connect establishes the socket connections: each rank dials the peers below it and accepts
// the peers above it, on the network chosen for that pair.
func (w *World) connect(nets map[string]*sock.Net) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ConnectTimeout)
	defer cancel()
	errs := make(chan error, len(nets))
	for name, n := range nets {
		dial, accept := map[int][]string{}, []int(nil)
		for r, p := range w.peers {
			if p.path != name {
				continue
			}
			if r < w.rank {
				dial[r] = w.addrsOf(r, name)
			} else {
				accept = append(accept, r)
			}
		}
		go func() { errs <- n.Connect(ctx, dial, accept) }()
	}
	var first error
	for range nets {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return first
	}
	for r := range w.peers {
		if n, ok := nets[w.peers[r].path]; ok {
			w.peers[r].ep = n.Endpoint(r)
		}
	}
	return nil
}

// addrsOf is where to reach world rank r on network.
func (w *World) addrsOf(r int, network string) []string {
	c := w.peers[r].card
	if network == "unix" {
		return []string{c.unix}
	}
	return dialAddrs(c.tcpPort, c.tcpIPs, c.node == w.node.id)
}

var unsafeNameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// unixName is an abstract Unix socket name for this rank: abstract names leave nothing in
// the file system, even when the process is killed.
func unixName(kvsname string, rank int) string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("@gorun-%s-%d-%s", unsafeNameChars.ReplaceAllString(kvsname, "_"), rank, hex.EncodeToString(r[:]))
}

// sharedKey is the job secret under a launcher that passed none (Hydra, Slurm): rank 0 makes
// one and shares it through the launcher's key-value store. Through an inherited PMI_FD only
// the job's ranks can read it; under Hydra's -pmi-port any process that connects to the port
// first can. gorun's own rendezvous never takes this path: joinJobKey returns a key from its
// authenticated exchange. That exchange costs one extra barrier, since a put becomes visible
// only after one.
func sharedKey(client *pmi.Client) ([]byte, error) {
	if client.Rank() == 0 {
		k := make([]byte, 32)
		rand.Read(k)
		if err := client.Put(jobKeyKey, hex.EncodeToString(k)); err != nil {
			return nil, fmt.Errorf("share the job key: %w", err)
		}
	}
	if err := client.Barrier(); err != nil {
		return nil, fmt.Errorf("job key barrier: %w", err)
	}
	v, err := client.Get(jobKeyKey)
	if err != nil {
		return nil, fmt.Errorf("read the job key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < 16 {
		return nil, errors.New("the job key in the key-value store is malformed")
	}
	return key, nil
}
