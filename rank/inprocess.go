package rank

import (
	"errors"
	"fmt"
	"os"

	"github.com/gorun-hpc/gorun/internal/memtransport"
)

// InProcess builds the worlds of a job whose ranks are goroutines of this process, joined by
// net, the in-memory transport: no launcher, no PMI, no processes, no shared memory. World r
// is rank r of net.Size(); run each on a goroutine of its own, as a rank, and close each from
// its goroutine (Close is collective, as in any job). Messages between ranks travel through
// net (Path says "mem"), a rank's messages to itself through its self path; waiting drives
// net's ports as it drives shared memory when net is polled.
//
// It is the construction seam for tests of what runs above a World: comm's matching,
// communicators and collectives run over it under the race detector. net's type is internal
// to this module, so nothing outside the module can call InProcess, and the API that
// programs see is unchanged.
//
// nodes[r] names the node of rank r (nil: every rank alone on a node of its own). A node of
// one rank has the private arena any such node has, so the world's collectives run
// hierarchically with every rank its node's leader; if any node has several ranks, no node
// has an arena (there is no shared memory) and the world's collectives run point to point,
// as with sockets forced. cfg is Init's, except that the environment is empty unless
// cfg.Getenv says otherwise, and a waiting rank neither spins nor yields its CPU unless cfg
// says so (ranks share the process's CPUs: a spinning goroutine only delays the one it waits
// for). With no launcher to tell, Abort exits the process, as in a world of one.
func InProcess(net *memtransport.Network, nodes []int, cfg Config) ([]*World, error) {
	if net == nil {
		return nil, errors.New("gorun: InProcess without a network")
	}
	n := net.Size()
	if nodes != nil && len(nodes) != n {
		return nil, fmt.Errorf("gorun: InProcess of %d ranks with a node for %d", n, len(nodes))
	}
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	if cfg.Spin == 0 {
		cfg.Spin = -1
	}
	if cfg.Yields == 0 {
		cfg.Yields = -1
	}
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("gorun: %w", err)
	}
	cards := make([]card, n)
	for r := range cards {
		node := r
		if nodes != nil {
			node = nodes[r]
		}
		cards[r] = card{pid: os.Getpid(), node: fmt.Sprintf("in-process/node-%d", node), usable: 1}
	}
	worlds := make([]*World, n)
	for r := range worlds {
		w := newWorld(cfg)
		w.rank, w.size = r, n
		w.buildPeers(cards)
		port, err := net.Attach(r, w.m)
		if err != nil {
			for _, made := range worlds[:r] {
				made.mem.Close()
			}
			return nil, fmt.Errorf("gorun: %w", err)
		}
		w.mem = port
		if p := port.Poller(); p != nil {
			w.poller = p
		}
		for peer := range w.peers {
			if peer != r {
				w.peers[peer].ep, w.peers[peer].path = port.Endpoint(peer), "mem"
			}
		}
		worlds[r] = w
	}
	return worlds, nil
}
