package collective

import (
	"fmt"
	"os"
	"strconv"
)

// Engine runs each collective with the algorithm its Table picks for the message size and
// communicator size, unless the environment forces one. It holds no state that changes after
// NewEngine, so it is safe for concurrent use.
type Engine struct {
	table  Table
	forced [numColls]Algo // "" where the table decides
	check  bool
}

// NewEngine returns an Engine over table, with the overrides the environment gives (getenv;
// os.Getenv when nil):
//
//	GORUN_<OP>_ALGO=name   force an algorithm, e.g. GORUN_ALLREDUCE_ALGO=ring (see Algos;
//	                       OP is BARRIER, BCAST, REDUCE, ALLREDUCE, GATHER, SCATTER, ALLGATHER,
//	                       ALLTOALL, REDUCE_SCATTER or SCAN); "" or "auto": the table decides
//	GORUN_CHECK=1          check every collective's arguments across ranks (see Verify)
//
// An unknown name is an error, so a typo in a benchmark's setting cannot go unnoticed.
func NewEngine(table Table, getenv func(string) string) (*Engine, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := table.validate(); err != nil {
		return nil, err
	}
	e := &Engine{table: table}
	for c := range numColls {
		v := getenv(c.EnvVar())
		if v == "" || v == "auto" {
			continue
		}
		if !validAlgo(c, Algo(v)) {
			return nil, fmt.Errorf("%s=%q: want auto or one of %v", c.EnvVar(), v, algos[c])
		}
		e.forced[c] = Algo(v)
	}
	if v := getenv("GORUN_CHECK"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("GORUN_CHECK=%q: want 1 or 0", v)
		}
		e.check = on
	}
	return e, nil
}

// Checking reports whether collectives should Verify their arguments first (GORUN_CHECK=1).
func (e *Engine) Checking() bool { return e.check }

// Choose returns the algorithm that runs c on a communicator of the given size for a message
// of the given size (as Table defines it).
func (e *Engine) Choose(c Coll, ranks, bytes int) Algo {
	if a := e.forced[c]; a != "" {
		return a
	}
	rs := e.table.rules(c)
	for _, r := range rs {
		if r.matches(ranks, bytes) {
			return r.Algo
		}
	}
	return rs[len(rs)-1].Algo // unreachable: validate made the last rule match everything
}

// Barrier runs the barrier algorithm.
func (e *Engine) Barrier(c Comm) error {
	if na, n := e.aware(c, CollBarrier); n != nil {
		if na.Nodes() == 1 {
			return n.Barrier()
		}
		return e.hierBarrier(na, n)
	}
	return Barrier(c)
}

// Bcast broadcasts buf from root.
func (e *Engine) Bcast(c Comm, buf []byte, root int) error {
	if na, n := e.aware(c, CollBcast); n != nil {
		switch {
		case na.Nodes() > 1:
			return e.hierBcast(c, na, n, buf, root)
		case len(buf) >= nodeBcastMin || e.forced[CollBcast] == AlgoShm:
			return NodeBcast(n, buf, root)
		}
	}
	if e.Choose(CollBcast, c.Size(), len(buf)) == AlgoScatterAllgather {
		return BcastScatterAllgather(c, buf, root)
	}
	return BcastBinomial(c, buf, root)
}

// Reduce reduces send into recv at root.
func (e *Engine) Reduce(c Comm, send, recv []byte, r Reducer, root int) error {
	if na, n := e.aware(c, CollReduce); n != nil {
		if na.Nodes() == 1 {
			return NodeReduce(n, send, recv, r, root)
		}
		if r.Commutative {
			return e.hierReduce(c, na, n, send, recv, r, root)
		}
	}
	return ReduceBinomial(c, send, recv, r, root)
}

// Allreduce reduces send into recv on every rank.
func (e *Engine) Allreduce(c Comm, send, recv []byte, r Reducer) error {
	if na, n := e.aware(c, CollAllreduce); n != nil {
		if na.Nodes() == 1 {
			return NodeAllreduce(n, send, recv, r)
		}
		if r.Commutative {
			return e.hierAllreduce(na, n, send, recv, r)
		}
	}
	switch e.Choose(CollAllreduce, c.Size(), len(send)) {
	case AlgoRabenseifner:
		return AllreduceRabenseifner(c, send, recv, r)
	case AlgoRing:
		return AllreduceRing(c, send, recv, r)
	}
	return AllreduceRecursiveDoubling(c, send, recv, r)
}

// Gather collects every rank's send into recv at root.
func (e *Engine) Gather(c Comm, send, recv []byte, root int) error {
	if na, n := e.aware(c, CollGather); n != nil && na.Nodes() == 1 {
		return NodeGather(n, send, recv, root)
	}
	if e.Choose(CollGather, c.Size(), c.Size()*len(send)) == AlgoLinear {
		return GatherLinear(c, send, recv, root)
	}
	return GatherBinomial(c, send, recv, root)
}

// Scatter hands block i of send at root to rank i's recv.
func (e *Engine) Scatter(c Comm, send, recv []byte, root int) error {
	if na, n := e.aware(c, CollScatter); n != nil && na.Nodes() == 1 && n.HalfSize() >= n.Size() {
		return NodeScatter(n, send, recv, root)
	}
	if e.Choose(CollScatter, c.Size(), c.Size()*len(recv)) == AlgoLinear {
		return ScatterLinear(c, send, recv, root)
	}
	return ScatterBinomial(c, send, recv, root)
}

// Allgather leaves every rank's send, in rank order, in recv on every rank.
func (e *Engine) Allgather(c Comm, send, recv []byte) error {
	if na, n := e.aware(c, CollAllgather); n != nil && na.Nodes() == 1 {
		return NodeAllgather(n, send, recv)
	}
	if e.Choose(CollAllgather, c.Size(), c.Size()*len(send)) == AlgoBruck {
		return AllgatherBruck(c, send, recv)
	}
	return AllgatherRing(c, send, recv)
}

// Alltoall sends block j of send to rank j; block i of recv comes from rank i.
func (e *Engine) Alltoall(c Comm, send, recv []byte) error {
	if na, n := e.aware(c, CollAlltoall); n != nil && na.Nodes() == 1 && n.HalfSize() >= n.Size() {
		return NodeAlltoall(n, send, recv)
	}
	switch e.Choose(CollAlltoall, c.Size(), len(send)/c.Size()) {
	case AlgoBruck:
		return AlltoallBruck(c, send, recv)
	case AlgoLinear:
		return AlltoallLinear(c, send, recv)
	}
	return AlltoallPairwise(c, send, recv)
}

// ReduceScatterBlock leaves in rank i's recv the reduction of every rank's block i of send.
func (e *Engine) ReduceScatterBlock(c Comm, send, recv []byte, r Reducer) error {
	if e.Choose(CollReduceScatter, c.Size(), len(send)) == AlgoPairwise {
		return ReduceScatterBlockPairwise(c, send, recv, r)
	}
	return ReduceScatterBlockHalving(c, send, recv, r)
}

// Scan leaves in recv at rank i the reduction of send over ranks 0…i.
func (e *Engine) Scan(c Comm, send, recv []byte, r Reducer) error {
	return ScanRecursiveDoubling(c, send, recv, r)
}
