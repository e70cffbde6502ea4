package collective

// The Engine's irregular collectives and Exscan. Counts and displacements are in bytes (see
// vector.go); comm has checked them and made displs packed where its caller passed nil.

// scatteredWindow is how many exchanges alltoallv's scattered algorithm keeps in flight.
const scatteredWindow = 8

// Gatherv collects rank i's send into recv[displs[i]:][:counts[i]] at root; counts, displs
// and recv are used at the root only. Each block takes the tree or goes straight to the root
// as the table says for its size (see decisionTable).
func (e *Engine) Gatherv(c Comm, send, recv []byte, counts, displs []int, root int) error {
	n := c.Size()
	if a, ok := e.uniform(CollGatherv, n); ok && a == algoLinear {
		return gathervLinear(c, send, recv, counts, displs, root)
	}
	return gathervTree(c, send, recv, counts, displs, root, func(b int) bool {
		return e.choose(CollGatherv, n, b) == algoLinear
	})
}

// Scatterv hands rank i send[displs[i]:][:counts[i]] from root, into its recv; counts,
// displs and send are used at the root only.
func (e *Engine) Scatterv(c Comm, send, recv []byte, counts, displs []int, root int) error {
	n := c.Size()
	if a, ok := e.uniform(CollScatterv, n); ok && a == algoLinear {
		return scattervLinear(c, send, recv, counts, displs, root)
	}
	return scattervTree(c, send, recv, counts, displs, root, func(b int) bool {
		return e.choose(CollScatterv, n, b) == algoLinear
	})
}

// Allgatherv leaves rank i's send in recv[displs[i]:][:counts[i]] on every rank; on a
// communicator that is one node with shared memory, through the node's arena.
func (e *Engine) Allgatherv(c Comm, send, recv []byte, counts, displs []int) error {
	if na, n := e.aware(c, CollAllgatherv); n != nil && na.Nodes() == 1 {
		return nodeAllgatherv(n, send, recv, counts, displs)
	}
	all := 0
	for _, k := range counts {
		all += k
	}
	if e.choose(CollAllgatherv, c.Size(), all) == algoRing {
		return allgathervRing(c, send, recv, counts, displs)
	}
	return allgathervBruck(c, send, recv, counts, displs)
}

// Alltoallv sends send's block j (sendCounts[j] bytes at sendDispls[j]) to rank j and
// receives rank i's block for this rank into recv's block i.
func (e *Engine) Alltoallv(c Comm, send []byte, sendCounts, sendDispls []int, recv []byte, recvCounts, recvDispls []int) error {
	n := c.Size()
	out, in := 0, 0
	for i := range min(n, len(sendCounts), len(recvCounts)) {
		out += sendCounts[i]
		in += recvCounts[i]
	}
	window := 1
	if e.choose(CollAlltoallv, n, max(out, in)/n) == algoScattered {
		window = scatteredWindow
	}
	return alltoallvWindowed(c, send, sendCounts, sendDispls, recv, recvCounts, recvDispls, window)
}

// ReduceScatter reduces every rank's send (sum(counts) bytes) and leaves block i of the
// result (counts[i] bytes) in rank i's recv.
func (e *Engine) ReduceScatter(c Comm, send, recv []byte, counts []int, r Reducer) error {
	if n := e.nodeOnly(c, CollReduceScatterV, r); n != nil {
		lo, err := checkReduceScatterV(c, send, recv, counts, r)
		if err != nil {
			return err
		}
		return nodeReduceScatter(n, send, recv, lo, r)
	}
	if e.choose(CollReduceScatterV, c.Size(), len(send)) == algoPairwise {
		return reduceScatterVPairwise(c, send, recv, counts, r)
	}
	return reduceScatterVHalving(c, send, recv, counts, r)
}

// Exscan leaves in recv at rank i > 0 the reduction of send over ranks 0…i-1; rank 0's recv
// is left as it was.
func (e *Engine) Exscan(c Comm, send, recv []byte, r Reducer) error {
	return exscanRecursiveDoubling(c, send, recv, r)
}
