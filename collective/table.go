package collective

import (
	"fmt"
	"strings"
)

// Coll names a collective operation.
type Coll uint8

const (
	CollBarrier Coll = iota
	CollBcast
	CollReduce
	CollAllreduce
	CollGather
	CollScatter
	CollAllgather
	CollAlltoall
	CollReduceScatter
	CollScan
	// The irregular collectives and Exscan (vector.go, allgatherv.go, reducescatterv.go).
	CollGatherv
	CollScatterv
	CollAllgatherv
	CollAlltoallv
	CollReduceScatterV // ReduceScatter with counts; CollReduceScatter is ReduceScatterBlock
	CollExscan
	numColls
)

var collNames = [numColls]string{"barrier", "bcast", "reduce", "allreduce", "gather", "scatter",
	"allgather", "alltoall", "reduce_scatter", "scan",
	"gatherv", "scatterv", "allgatherv", "alltoallv", "reduce_scatterv", "exscan"}

func (c Coll) String() string {
	if c < numColls {
		return collNames[c]
	}
	if k := int(c - CollNeighborAllgather); c >= CollNeighborAllgather && k < len(neighborNames) {
		return neighborNames[k]
	}
	return fmt.Sprintf("coll(%d)", uint8(c))
}

// envVar is the environment variable that forces c's algorithm, e.g. GORUN_ALLREDUCE_ALGO.
func (c Coll) envVar() string { return "GORUN_" + strings.ToUpper(c.String()) + "_ALGO" }

// algorithm names an algorithm, as the environment and a decision table spell it.
type algorithm string

const (
	algoDissemination     algorithm = "dissemination"
	algoBinomial          algorithm = "binomial"
	algoScatterAllgather  algorithm = "scatter_allgather"
	algoRecursiveDoubling algorithm = "recursive_doubling"
	algoRabenseifner      algorithm = "rabenseifner"
	algoRing              algorithm = "ring"
	algoLinear            algorithm = "linear"
	algoBruck             algorithm = "bruck"
	algoPairwise          algorithm = "pairwise"
	algoRecursiveHalving  algorithm = "recursive_halving"
	algoScattered         algorithm = "scattered"
)

// algosOf lists the algorithms that implement c.
func algosOf(c Coll) []algorithm {
	if c >= numColls {
		return nil
	}
	return algos[c]
}

var algos = [numColls][]algorithm{
	CollBarrier:        {algoDissemination, algoShm},
	CollBcast:          {algoBinomial, algoScatterAllgather, algoShm},
	CollReduce:         {algoBinomial, algoShm},
	CollAllreduce:      {algoRecursiveDoubling, algoRabenseifner, algoRing, algoShm},
	CollGather:         {algoBinomial, algoLinear, algoShm},
	CollScatter:        {algoBinomial, algoLinear, algoShm},
	CollAllgather:      {algoRing, algoBruck, algoShm},
	CollAlltoall:       {algoPairwise, algoBruck, algoLinear, algoShm},
	CollReduceScatter:  {algoRecursiveHalving, algoPairwise, algoShm},
	CollScan:           {algoRecursiveDoubling},
	CollGatherv:        {algoBinomial, algoLinear},
	CollScatterv:       {algoBinomial, algoLinear},
	CollAllgatherv:     {algoBruck, algoRing, algoShm},
	CollAlltoallv:      {algoScattered, algoPairwise},
	CollReduceScatterV: {algoRecursiveHalving, algoPairwise, algoShm},
	CollExscan:         {algoRecursiveDoubling},
}

// rule picks Algo for the calls that meet all of its conditions; a zero condition always
// holds. The message size is the one decisionTable describes for the operation.
type rule struct {
	Algo     algorithm `json:"algo"`
	MaxBytes int       `json:"max_bytes,omitempty"` // message size ≤ MaxBytes
	MinRanks int       `json:"min_ranks,omitempty"` // communicator size ≥ MinRanks
	MaxRanks int       `json:"max_ranks,omitempty"` // communicator size ≤ MaxRanks
	NonPow2  bool      `json:"non_pow2,omitempty"`  // communicator size not a power of two
}

func (r rule) matches(ranks, bytes int) bool {
	return (r.MaxBytes == 0 || bytes <= r.MaxBytes) &&
		(r.MinRanks == 0 || ranks >= r.MinRanks) &&
		(r.MaxRanks == 0 || ranks <= r.MaxRanks) &&
		(!r.NonPow2 || ranks&(ranks-1) != 0)
}

// decisionTable is the decision table: for each operation, rules tried in order; the first that
// matches picks the algorithm, and the last must match everything. The message size a rule
// compares is, in bytes: the buffer for Bcast, Reduce, Allreduce and Scan; the whole gathered
// buffer (n blocks) for Gather, Scatter, Allgather and ReduceScatterBlock; one block (what one
// pair exchanges) for Alltoall; zero for Barrier. The same call on every rank sees the same
// sizes, so every rank picks the same algorithm.
//
// The irregular collectives: the whole gathered buffer (sum of the counts) for Allgatherv and
// ReduceScatter, the buffer for Exscan, which every rank knows. Gatherv and Scatterv compare
// one block: only the root knows every count, so the rule is applied per block, by its sender
// or receiver and by the root alike, and picks the way that block travels (binomial: on the
// tree; linear: straight between the root and its rank), so the ranks agree without talking.
// Alltoallv compares this rank's average block, max(sent, received)/n: ranks may pick
// differently there, which alltoallvWindowed allows.
//
// defaultTable is what gorun uses until a tuning step measures the machine; a table marshals
// to JSON, so such a step could write its own (newEngine takes any).
type decisionTable struct {
	Barrier        []rule `json:"barrier"`
	Bcast          []rule `json:"bcast"`
	Reduce         []rule `json:"reduce"`
	Allreduce      []rule `json:"allreduce"`
	Gather         []rule `json:"gather"`
	Scatter        []rule `json:"scatter"`
	Allgather      []rule `json:"allgather"`
	Alltoall       []rule `json:"alltoall"`
	ReduceScatter  []rule `json:"reduce_scatter"`
	Scan           []rule `json:"scan"`
	Gatherv        []rule `json:"gatherv"`
	Scatterv       []rule `json:"scatterv"`
	Allgatherv     []rule `json:"allgatherv"`
	Alltoallv      []rule `json:"alltoallv"`
	ReduceScatterV []rule `json:"reduce_scatterv"`
	Exscan         []rule `json:"exscan"`
}

func (t *decisionTable) rules(c Coll) []rule {
	return [numColls][]rule{t.Barrier, t.Bcast, t.Reduce, t.Allreduce, t.Gather, t.Scatter,
		t.Allgather, t.Alltoall, t.ReduceScatter, t.Scan, t.Gatherv, t.Scatterv, t.Allgatherv,
		t.Alltoallv, t.ReduceScatterV, t.Exscan}[c]
}

// defaultTable returns the built-in decision table (a fresh copy).
//
// The thresholds come from the usual cost model, a message costing α + s·β and a reduction
// s·γ, with values for one node: α ≈ 1 µs per message (more when ranks outnumber cores),
// β ≈ γ ≈ 0.1 ns per byte (10 GB/s copies), so α/β ≈ 10 KB. Latency-optimal algorithms
// (log2 n steps, whole buffers) win below a few α/β; bandwidth-optimal ones (each byte sent
// about twice, more steps) win above. They are first guesses to be replaced by measured ones.
func defaultTable() decisionTable {
	return decisionTable{
		Barrier: []rule{{Algo: algoDissemination}},
		// Binomial: ceil(log2 n)·(α + sβ). Scatter + ring allgather: (log2 n + n-1)·α +
		// 2(n-1)/n·sβ. They cross at s = (n-1)α / (β·(log2 n - 2(n-1)/n)): about 30 KB for 3
		// ranks, 55-70 KB for 4-16, so 32 KiB. With 2 ranks scatter+allgather never wins.
		Bcast: []rule{
			{Algo: algoBinomial, MaxRanks: 2},
			{Algo: algoBinomial, MaxBytes: 32 << 10},
			{Algo: algoScatterAllgather},
		},
		Reduce: []rule{{Algo: algoBinomial}},
		// Recursive doubling: log2 p·(α + s(β+γ)). Rabenseifner: 2·log2 p·α + 2(p-1)/p·sβ +
		// (p-1)/p·sγ; they cross near 10 KB for 4-8 ranks, so 8 KiB. A size that is not a
		// power of two costs Rabenseifner a fold (two whole-buffer transfers more), which
		// ring (2(n-1)α, no fold) beats above 15-30 KB for 6-9 ranks: 32 KiB.
		Allreduce: []rule{
			{Algo: algoRecursiveDoubling, MaxBytes: 8 << 10},
			{Algo: algoRabenseifner, MaxBytes: 32 << 10},
			{Algo: algoRing, NonPow2: true},
			{Algo: algoRabenseifner},
		},
		// Binomial: log2 n messages at the root, but each block is forwarded about
		// log2(n)/2 times, copies that compete for the same cores on one node; linear sends
		// each block once in n-1 messages. 64 KiB in all is where the copies outweigh n-1 α.
		Gather: []rule{
			{Algo: algoBinomial, MaxBytes: 64 << 10},
			{Algo: algoLinear},
		},
		Scatter: []rule{
			{Algo: algoBinomial, MaxBytes: 64 << 10},
			{Algo: algoLinear},
		},
		// Bruck: log2 n steps for any n, plus a local rotation of the whole result; ring:
		// n-1 steps, no extra copy. Same bytes on the wire, so Bruck up to 64 KiB in all
		// (MPICH switches near 80 KB).
		Allgather: []rule{
			{Algo: algoBruck, MaxBytes: 64 << 10},
			{Algo: algoRing},
		},
		// Per block b: Bruck takes log2 n steps but sends each block about log2(n)/2 times
		// (plus packing), pairwise n-1 steps of one block. Bruck pays from 8 ranks up for
		// blocks up to a few hundred bytes (MPICH: 256 B); medium blocks do best with many
		// exchanges in flight (linear), large ones one pair at a time (pairwise), whose
		// transfers already fill the links, from 32 KiB (MPICH's choice too).
		Alltoall: []rule{
			{Algo: algoBruck, MaxBytes: 512, MinRanks: 8},
			{Algo: algoLinear, MaxBytes: 32 << 10},
			{Algo: algoPairwise},
		},
		// Recursive halving: log2 p steps, about n·b bytes sent, but a fold of the whole n·b
		// when n is not a power of two; pairwise: n-1 steps, (n-1)·b bytes, no fold. The fold
		// costs about n·b·β, which outweighs the extra steps above ~32 KiB in all.
		ReduceScatter: []rule{
			{Algo: algoRecursiveHalving, MaxBytes: 32 << 10},
			{Algo: algoPairwise, NonPow2: true},
			{Algo: algoRecursiveHalving},
		},
		Scan: []rule{{Algo: algoRecursiveDoubling}},
		// Per block b: on the tree a block is forwarded about log2(n)/2 times more, about
		// log2(n)/2·b·β; straight to the root it costs the root one more message in turn,
		// about α ≈ 10 KB of copying. They cross near 10 KB/(log2(n)/2), 4-7 KB for 8-64
		// ranks, so blocks up to 4 KiB take the tree. A zero block is no message either way.
		// Up to 8 ranks the tree saves at most two steps and costs each edge a header
		// message, so every block goes straight (linear for every size: no headers at all,
		// which is what MPICH and Open MPI do at every size).
		Gatherv:  []rule{{Algo: algoLinear, MaxRanks: 8}, {Algo: algoBinomial, MaxBytes: 4 << 10}, {Algo: algoLinear}},
		Scatterv: []rule{{Algo: algoLinear, MaxRanks: 8}, {Algo: algoBinomial, MaxBytes: 4 << 10}, {Algo: algoLinear}},
		// As Allgather: the same bytes on the wire, Bruck in log2 n steps plus an unpacking
		// copy of the whole result, ring in n-1 steps in place.
		Allgatherv: []rule{{Algo: algoBruck, MaxBytes: 64 << 10}, {Algo: algoRing}},
		// As Alltoall's linear and pairwise: medium blocks gain from several exchanges in
		// flight (scattered keeps 8), large ones go one pair at a time from 32 KiB.
		Alltoallv: []rule{{Algo: algoScattered, MaxBytes: 32 << 10}, {Algo: algoPairwise}},
		// As ReduceScatterBlock.
		ReduceScatterV: []rule{
			{Algo: algoRecursiveHalving, MaxBytes: 32 << 10},
			{Algo: algoPairwise, NonPow2: true},
			{Algo: algoRecursiveHalving},
		},
		Exscan: []rule{{Algo: algoRecursiveDoubling}},
	}
}

// validate checks that every operation has rules, that each names an algorithm of that
// operation, and that the last one matches every call.
func (t *decisionTable) validate() error {
	for c := range numColls {
		rs := t.rules(c)
		if len(rs) == 0 {
			return fmt.Errorf("collective table: no rules for %v", c)
		}
		for _, r := range rs {
			if !validAlgo(c, r.Algo) {
				return fmt.Errorf("collective table: %v has no algorithm %q (want one of %v)", c, r.Algo, algos[c])
			}
		}
		if last := rs[len(rs)-1]; last != (rule{Algo: last.Algo}) {
			return fmt.Errorf("collective table: the last rule for %v has conditions", c)
		}
	}
	return nil
}

func validAlgo(c Coll, a algorithm) bool {
	for _, v := range algos[c] {
		if v == a {
			return true
		}
	}
	return false
}
