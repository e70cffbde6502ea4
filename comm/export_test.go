package comm

import (
	"github.com/gorun-hpc/gorun/internal/memtransport"
	"github.com/gorun-hpc/gorun/rank"
)

// InProcess returns the world communicators of an in-process job over net (rank.InProcess):
// communicator r is rank r's, for a goroutine of its own, which also closes it. It exists for
// comm's own tests (package comm_test), which reach comm only through its public API.
func InProcess(net *memtransport.Network, nodes []int, cfg rank.Config) ([]*Comm, error) {
	worlds, err := rank.InProcess(net, nodes, cfg)
	if err != nil {
		return nil, err
	}
	cs := make([]*Comm, len(worlds))
	for r, w := range worlds {
		cs[r] = worldComm(w)
	}
	return cs, nil
}
