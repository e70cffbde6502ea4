package comm

import (
	"github.com/gorun-hpc/gorun/collective"
)

// The world communicator is node-aware (collective.NodeAware): its collectives use the node's
// shared memory directly, and across nodes run hierarchically (node, then the node leaders,
// then node). Derived communicators use point-to-point algorithms: the arena is one per node,
// and only the world's collectives, which every rank runs in the same order and one at a time,
// may use it without coordination.

// Node implements collective.NodeAware.
func (v *collView) Node() collective.Node {
	c := (*Comm)(v)
	if !c.isWorld() || c.state.arena == nil {
		return nil // a nil *rank.NodeArena in the interface would not be nil
	}
	return c.state.arena
}

// Nodes implements collective.NodeAware.
func (v *collView) Nodes() int { return v.w.NodeCount() }

// NodeOf implements collective.NodeAware (for the world, communicator ranks are world ranks).
func (v *collView) NodeOf(r int) int { return v.w.NodeOf(r) }

// Leader implements collective.NodeAware.
func (v *collView) Leader(node int) int { return v.w.NodeLeader(node) }

// Leaders implements collective.NodeAware: the communicator of the node leaders, made by the
// first hierarchical collective (every rank calls this at that point).
func (v *collView) Leaders() (collective.Comm, error) {
	c := (*Comm)(v)
	s := c.state
	if !s.leadersMade {
		color := Undefined
		if c.w.NodeLeader(c.w.NodeOf(c.rank)) == c.rank {
			color = 0
		}
		l, err := c.Split(color, c.rank)
		if err != nil {
			return nil, err
		}
		s.leaders, s.leadersMade = l, true
	}
	if s.leaders == nil {
		return nil, nil // a nil *Comm in the interface would not be nil
	}
	return s.leaders.coll(), nil
}
