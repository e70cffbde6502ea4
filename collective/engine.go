package collective

import (
	"fmt"
	"os"
	"strconv"
)

// Engine runs each collective with the algorithm its decision table picks for the message size
// and communicator size, unless the environment forces one. It holds no state that changes after
// NewEngine, so it is safe for concurrent use.
type Engine struct {
	table  decisionTable
	forced [numColls]algorithm // "" where the table decides
	check  bool
}

// NewEngine returns an Engine over the built-in decision table (table.go), with the overrides
// the environment gives (getenv; os.Getenv when nil):
//
//	GORUN_<OP>_ALGO=name   force an algorithm, e.g. GORUN_ALLREDUCE_ALGO=ring (see algos;
//	                       OP is BARRIER, BCAST, REDUCE, ALLREDUCE, GATHER, SCATTER, ALLGATHER,
//	                       ALLTOALL, REDUCE_SCATTER, SCAN, GATHERV, SCATTERV, ALLGATHERV,
//	                       ALLTOALLV, REDUCE_SCATTERV or EXSCAN); "" or "auto": the table decides
//	GORUN_CHECK=1          check every collective's arguments across ranks (see Verify)
//
// An unknown name is an error, so a typo in a benchmark's setting cannot go unnoticed.
func NewEngine(getenv func(string) string) (*Engine, error) {
	return newEngine(defaultTable(), getenv)
}

// newEngine is NewEngine over another decision table.
func newEngine(table decisionTable, getenv func(string) string) (*Engine, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := table.validate(); err != nil {
		return nil, err
	}
	e := &Engine{table: table}
	for c := range numColls {
		v := getenv(c.envVar())
		if v == "" || v == "auto" {
			continue
		}
		if !validAlgo(c, algorithm(v)) {
			return nil, fmt.Errorf("%s=%q: want auto or one of %v", c.envVar(), v, algos[c])
		}
		e.forced[c] = algorithm(v)
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

// choose returns the algorithm that runs c on a communicator of the given size for a message
// of the given size (as decisionTable defines it).
func (e *Engine) choose(c Coll, ranks, bytes int) algorithm {
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

// uniform reports the algorithm that runs c on a communicator of the given size whatever the
// message size, if the environment or the table makes it one: the rules whose rank conditions
// hold up to the first without a size limit all name it. Every rank can tell that from the
// communicator's size alone, so an algorithm that otherwise needs to learn other ranks' sizes
// (Gatherv's and Scatterv's per-block choice) can skip that.
func (e *Engine) uniform(c Coll, ranks int) (algorithm, bool) {
	if a := e.forced[c]; a != "" {
		return a, true
	}
	var a algorithm
	for _, r := range e.table.rules(c) {
		if !r.matches(ranks, 0) {
			continue
		}
		if a != "" && r.Algo != a {
			return "", false
		}
		a = r.Algo
		if r.MaxBytes == 0 {
			return a, true
		}
	}
	return "", false // unreachable: the last rule matches every call
}

// Barrier runs the barrier algorithm.
func (e *Engine) Barrier(c Comm) error {
	if na, n := e.aware(c, CollBarrier); n != nil {
		if na.Nodes() == 1 {
			return n.Barrier()
		}
		return e.hierBarrier(na, n)
	}
	return barrier(c)
}

// Bcast broadcasts buf from root.
func (e *Engine) Bcast(c Comm, buf []byte, root int) error {
	if na, n := e.aware(c, CollBcast); n != nil {
		switch {
		case na.Nodes() > 1:
			return e.hierBcast(c, na, n, buf, root)
		case len(buf) >= nodeBcastMin || e.forced[CollBcast] == algoShm:
			return nodeBcast(n, buf, root)
		}
	}
	if e.choose(CollBcast, c.Size(), len(buf)) == algoScatterAllgather {
		return bcastScatterAllgather(c, buf, root)
	}
	return bcastBinomial(c, buf, root)
}

// Reduce reduces send into recv at root.
func (e *Engine) Reduce(c Comm, send, recv []byte, r Reducer, root int) error {
	if na, n := e.aware(c, CollReduce); n != nil {
		if na.Nodes() == 1 {
			return nodeReduce(n, send, recv, r, root)
		}
		if r.Commutative {
			return e.hierReduce(c, na, n, send, recv, r, root)
		}
	}
	return reduceBinomial(c, send, recv, r, root)
}

// Allreduce reduces send into recv on every rank.
func (e *Engine) Allreduce(c Comm, send, recv []byte, r Reducer) error {
	if na, n := e.aware(c, CollAllreduce); n != nil {
		if na.Nodes() == 1 {
			return nodeAllreduce(n, send, recv, r)
		}
		if r.Commutative {
			return e.hierAllreduce(na, n, send, recv, r)
		}
	}
	switch e.choose(CollAllreduce, c.Size(), len(send)) {
	case algoRabenseifner:
		return allreduceRabenseifner(c, send, recv, r)
	case algoRing:
		return allreduceRing(c, send, recv, r)
	}
	return allreduceRecursiveDoubling(c, send, recv, r)
}

// Gather collects every rank's send into recv at root.
func (e *Engine) Gather(c Comm, send, recv []byte, root int) error {
	if na, n := e.aware(c, CollGather); n != nil && na.Nodes() == 1 {
		return nodeGather(n, send, recv, root)
	}
	if e.choose(CollGather, c.Size(), c.Size()*len(send)) == algoLinear {
		return gatherLinear(c, send, recv, root)
	}
	return gatherBinomial(c, send, recv, root)
}

// Scatter hands block i of send at root to rank i's recv.
func (e *Engine) Scatter(c Comm, send, recv []byte, root int) error {
	if na, n := e.aware(c, CollScatter); n != nil && na.Nodes() == 1 && n.HalfSize() >= n.Size() {
		return nodeScatter(n, send, recv, root)
	}
	if e.choose(CollScatter, c.Size(), c.Size()*len(recv)) == algoLinear {
		return scatterLinear(c, send, recv, root)
	}
	return scatterBinomial(c, send, recv, root)
}

// Allgather leaves every rank's send, in rank order, in recv on every rank.
func (e *Engine) Allgather(c Comm, send, recv []byte) error {
	if na, n := e.aware(c, CollAllgather); n != nil && na.Nodes() == 1 {
		return nodeAllgather(n, send, recv)
	}
	if e.choose(CollAllgather, c.Size(), c.Size()*len(send)) == algoBruck {
		return allgatherBruck(c, send, recv)
	}
	return AllgatherRing(c, send, recv)
}

// Alltoall sends block j of send to rank j; block i of recv comes from rank i.
func (e *Engine) Alltoall(c Comm, send, recv []byte) error {
	if na, n := e.aware(c, CollAlltoall); n != nil && na.Nodes() == 1 && n.HalfSize() >= n.Size() {
		return nodeAlltoall(n, send, recv)
	}
	switch e.choose(CollAlltoall, c.Size(), len(send)/c.Size()) {
	case algoBruck:
		return alltoallBruck(c, send, recv)
	case algoLinear:
		return alltoallLinear(c, send, recv)
	}
	return alltoallPairwise(c, send, recv)
}

// ReduceScatterBlock leaves in rank i's recv the reduction of every rank's block i of send.
func (e *Engine) ReduceScatterBlock(c Comm, send, recv []byte, r Reducer) error {
	if n := e.nodeOnly(c, CollReduceScatter, r); n != nil {
		if err := checkReduceScatter(c, send, recv, r); err != nil {
			return err
		}
		return nodeReduceScatter(n, send, recv, c.Rank()*len(recv), r)
	}
	if e.choose(CollReduceScatter, c.Size(), len(send)) == algoPairwise {
		return reduceScatterBlockPairwise(c, send, recv, r)
	}
	return reduceScatterBlockHalving(c, send, recv, r)
}

// Scan leaves in recv at rank i the reduction of send over ranks 0…i.
func (e *Engine) Scan(c Comm, send, recv []byte, r Reducer) error {
	return scanRecursiveDoubling(c, send, recv, r)
}
