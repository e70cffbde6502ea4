package collective

// Node-aware collectives. A communicator that knows where its ranks live implements
// NodeAware. If it holds every rank of this rank's node and the node has shared memory, the
// collectives below run in that memory (node.go) instead of passing messages; if it spans
// several nodes, they run hierarchically: a node-local phase in shared memory, the node
// leaders (each node's local rank 0) between nodes with the point-to-point algorithms, and a
// node-local phase again.
type NodeAware interface {
	// Node is the shared memory of this rank's node, or nil if the communicator does not hold
	// every rank of the node or the node has none.
	Node() Node
	// Nodes is the number of nodes the communicator spans.
	Nodes() int
	// NodeOf is the node (0 ≤ NodeOf < Nodes, in order of each node's lowest rank) of a rank.
	NodeOf(rank int) int
	// Leader is the rank of a node's leader (its lowest rank).
	Leader(node int) int
	// Leaders returns the communicator of the node leaders, whose rank i is node i's leader,
	// at a leader, and nil elsewhere. Every rank calls it (the first call may be collective).
	Leaders() (Comm, error)
}

// algoShm names the node-aware algorithms, which the engine uses whenever a communicator
// offers them, unless the environment forces another algorithm.
const algoShm algorithm = "shm"

// aware returns c's node awareness and its node's shared memory if the node-aware algorithm
// should run coll: the environment does not force another algorithm, and c offers one.
func (e *Engine) aware(c Comm, coll Coll) (NodeAware, Node) {
	if f := e.forced[coll]; f != "" && f != algoShm {
		return nil, nil
	}
	na, ok := c.(NodeAware)
	if !ok {
		return nil, nil
	}
	n := na.Node()
	if n == nil {
		return nil, nil
	}
	return na, n
}

// nodeOnly returns the shared memory of c's node if c is that one node and the node-aware
// algorithm should run coll, whose elements (r's) fit a round of the arena; else nil.
func (e *Engine) nodeOnly(c Comm, coll Coll, r Reducer) Node {
	na, n := e.aware(c, coll)
	if n == nil || na.Nodes() != 1 || n.HalfSize() < r.Size {
		return nil
	}
	return n
}

// hierBarrier: the node, then the leaders, then the node again.
func (e *Engine) hierBarrier(na NodeAware, n Node) error {
	leaders, err := na.Leaders()
	if err != nil {
		return err
	}
	if err := n.Barrier(); err != nil {
		return err
	}
	if leaders != nil {
		if err := barrier(leaders); err != nil {
			return err
		}
	}
	return n.Barrier()
}

// hierBcast: the root hands buf to its node's leader, the leaders broadcast it among
// themselves, and each leader broadcasts it in its node.
func (e *Engine) hierBcast(c Comm, na NodeAware, n Node, buf []byte, root int) error {
	leaders, err := na.Leaders()
	if err != nil {
		return err
	}
	node := na.NodeOf(root)
	if leader := na.Leader(node); leader != root {
		switch c.Rank() {
		case root:
			if err := c.Send(buf, leader, tagBcast); err != nil {
				return err
			}
		case leader:
			if _, err := c.Recv(buf, root, tagBcast); err != nil {
				return err
			}
		}
	}
	if leaders != nil {
		if err := e.Bcast(leaders, buf, node); err != nil {
			return err
		}
	}
	return nodeBcast(n, buf, 0)
}

// hierAllreduce: reduce in the node to its leader, allreduce among the leaders, broadcast in
// the node. Nodes are combined in node order, so only commutative operations take this path.
func (e *Engine) hierAllreduce(na NodeAware, n Node, send, recv []byte, r Reducer) error {
	leaders, err := na.Leaders()
	if err != nil {
		return err
	}
	if err := nodeReduce(n, send, recv, r, 0); err != nil {
		return err
	}
	if leaders != nil {
		if err := e.Allreduce(leaders, recv, recv, r); err != nil {
			return err
		}
	}
	return nodeBcast(n, recv, 0)
}

// hierReduce: reduce in every node to its leader, among the leaders to the root's leader,
// which hands the result to the root.
func (e *Engine) hierReduce(c Comm, na NodeAware, n Node, send, recv []byte, r Reducer, root int) error {
	leaders, err := na.Leaders()
	if err != nil {
		return err
	}
	node, leader := na.NodeOf(root), na.Leader(na.NodeOf(root))
	var part, out []byte
	if leaders != nil {
		part = alloc(len(send))
		defer release(part)
		if c.Rank() == root {
			out = recv
		} else if leaders.Rank() == node {
			out = alloc(len(send))
			defer release(out)
		}
	}
	if err := nodeReduce(n, send, part, r, 0); err != nil {
		return err
	}
	if leaders != nil {
		if err := e.Reduce(leaders, part, out, r, node); err != nil {
			return err
		}
	}
	if leader == root {
		return nil
	}
	switch c.Rank() {
	case leader:
		return c.Send(out, root, tagReduce)
	case root:
		_, err := c.Recv(recv, leader, tagReduce)
		return err
	}
	return nil
}
