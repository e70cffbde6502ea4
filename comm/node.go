package comm

import (
	"fmt"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/rank"
)

// Every communicator whose ranks share nodes is node-aware (collective.NodeAware): its
// collectives use shared memory directly within a node, and across nodes run hierarchically
// (node, then the node leaders, then node). The world uses the node's arena. A derived
// communicator (Split, Dup, Cart, SplitType, CreateGroup, …) takes a communicator arena of
// its own on each node where it has several ranks, when it is made (setupNode), and gives it
// back when the last of them closes it; collectives on different communicators may then run
// at the same time. A derived communicator whose ranks are all on different nodes is not
// node-aware: with one rank per node there is no shared memory to use, and its leaders would
// be itself.

// nodeView is what a communicator knows of where its ranks run. It is fixed when the
// communicator is made, except leaders, which the first hierarchical collective makes
// (collectives on one communicator run one at a time, so it needs no lock).
type nodeView struct {
	arena  *rank.NodeArena // this rank's node's arena for the communicator
	nodeOf []int           // rank → node (0, 1, … in order of each node's lowest rank)
	leader []int           // node → its lowest rank
	// leaders is the node leaders' communicator, nil at ranks that do not lead their node.
	leaders     *Comm
	leadersMade bool
}

// arenaTag carries a communicator arena's number from the node's first rank of a new
// communicator to its other ranks there, in the new communicator's collective context:
// above every algorithm's tag, below CreateGroup's.
const arenaTag = groupTagBase - 1

// nodeLayout returns c's node view without an arena: each rank's node, numbered in order of
// each node's lowest rank, and each node's lowest rank; and the world ranks of c on this
// rank's node, in c's order. Every rank computes the same view from the world's node facts.
func (c *Comm) nodeLayout() (v *nodeView, local []int) {
	v = &nodeView{nodeOf: make([]int, c.size)}
	nodeIndex := map[int]int{} // world node → node of c
	myNode := c.w.NodeOf(c.worldRank(c.rank))
	for r := range c.size {
		wn := c.w.NodeOf(c.worldRank(r))
		k, ok := nodeIndex[wn]
		if !ok {
			k = len(v.leader)
			nodeIndex[wn] = k
			v.leader = append(v.leader, r)
		}
		v.nodeOf[r] = k
		if wn == myNode {
			local = append(local, c.worldRank(r))
		}
	}
	return v, local
}

// setupWorldNode makes the world c node-aware over the node's arena, if it has one (without
// shared memory, no node of the job has).
func (c *Comm) setupWorldNode() {
	if arena := c.w.NodeArena(); arena != nil {
		c.node, _ = c.nodeLayout()
		c.node.arena = arena
	}
}

// setupNode makes a new derived communicator c node-aware where it can be: on each node with
// several of its ranks, the first takes a communicator arena and hands its number to the
// others; then every rank learns whether every such node got one, and c is node-aware only
// if so (the node-aware algorithms must run on every node or on none). Collective over c,
// before anything else runs on it; only where the world is node-aware (worldState.shared).
func (c *Comm) setupNode() error {
	v, local := c.nodeLayout()
	if len(v.leader) == c.size {
		return nil // one rank per node
	}
	k := -1
	if len(local) > 1 {
		leader := v.leader[v.nodeOf[c.rank]]
		buf := []int64{-1}
		if c.rank == leader {
			buf[0] = int64(c.w.ClaimCommArena(len(local)))
			for _, w := range local[1:] {
				if err := c.coll().Send(bytesOf(buf), c.commRank(w), arenaTag); err != nil {
					return fmt.Errorf("communicator arena: %w", err)
				}
			}
		} else if _, err := c.coll().Recv(bytesOf(buf), leader, arenaTag); err != nil {
			return fmt.Errorf("communicator arena: %w", err)
		}
		k = int(buf[0])
	}
	ok := []int32{1}
	if len(local) > 1 && k < 0 {
		ok[0] = 0
	}
	if err := Allreduce(c, ok, ok, Min); err != nil {
		return fmt.Errorf("communicator arena: %w", err)
	}
	if ok[0] == 0 {
		c.w.ReleaseCommArena(k) // some node got none: point to point everywhere
		return nil
	}
	v.arena = c.w.CommArena(k, local)
	c.node = v
	return nil
}

// Node implements collective.NodeAware.
func (v *collView) Node() collective.Node {
	if v.node == nil {
		return nil // a nil *rank.NodeArena in the interface would not be nil
	}
	return v.node.arena
}

// Nodes implements collective.NodeAware.
func (v *collView) Nodes() int {
	if v.node == nil {
		return 1
	}
	return len(v.node.leader)
}

// NodeOf implements collective.NodeAware.
func (v *collView) NodeOf(r int) int { return v.node.nodeOf[r] }

// Leader implements collective.NodeAware.
func (v *collView) Leader(node int) int { return v.node.leader[node] }

// Leaders implements collective.NodeAware: the communicator of the node leaders, made by the
// first hierarchical collective (every rank calls this at that point).
func (v *collView) Leaders() (collective.Comm, error) {
	c, nv := (*Comm)(v), v.node
	if !nv.leadersMade {
		color := Undefined
		if nv.leader[nv.nodeOf[c.rank]] == c.rank {
			color = 0
		}
		l, err := c.Split(color, c.rank)
		if err != nil {
			return nil, err
		}
		nv.leaders, nv.leadersMade = l, true
	}
	if nv.leaders == nil {
		return nil, nil // a nil *Comm in the interface would not be nil
	}
	return nv.leaders.coll(), nil
}
