package comm

import (
	"fmt"
	"slices"

	"github.com/gorun-hpc/gorun/collective"
)

// Topology is a communicator with neighbours: a *Cart or a *Graph. The neighbourhood
// collectives (NeighborAllgather, NeighborAlltoall, NeighborAlltoallv) move data along its
// edges only.
type Topology interface {
	// Neighbors returns the ranks this rank receives from (sources) and sends to
	// (destinations), in the order the neighbourhood collectives use for their blocks.
	Neighbors() (sources, destinations []int)
	// neighborhood is the communicator and the edges as the algorithm takes them.
	neighborhood() (*Comm, *collective.Neighborhood)
}

var (
	_ Topology = (*Cart)(nil)
	_ Topology = (*Graph)(nil)
)

// Graph is a communicator with a directed graph of neighbours (MPI_Dist_graph_create_adjacent):
// each rank names its own sources and destinations. It is a *Comm for every other purpose.
type Graph struct {
	*Comm
	nb collective.Neighborhood
}

// DistGraph returns a communicator over the ranks of c, in the same order, in which this rank
// receives from sources and sends to destinations (ranks of c; an edge may repeat, and a rank
// may be its own neighbour). The graph must be consistent: rank i lists j among its
// destinations as many times as j lists i among its sources. DistGraph checks that on every
// rank (one all-to-all of edge counts, then one allreduce), so that an inconsistent graph is
// ErrTopology everywhere at creation instead of a hang in the first neighbourhood collective.
//
// reorder is accepted and does not change the order: each rank declares its own edges, so a
// renumbering would only change the names of the ranks, not which processes talk to which.
//
// Collective over c.
func (c *Comm) DistGraph(sources, destinations []int, reorder bool) (*Graph, error) {
	if err := c.check(0, false); err != nil {
		return nil, err
	}
	var err error
	for _, list := range [2][]int{sources, destinations} {
		for _, r := range list {
			if r < 0 || r >= c.size {
				err = fmt.Errorf("%w: DistGraph neighbour %d not in [0, %d)", ErrRank, r, c.size)
			}
		}
	}
	var agree int64
	if err != nil {
		agree = 1 // the others fail with ErrMismatch
	}
	n, serr := c.split(0, c.rank, agree)
	if err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	if err := checkGraph(n, sources, destinations); err != nil {
		return nil, err
	}
	return &Graph{Comm: n, nb: collective.Neighborhood{
		Sources: slices.Clone(sources), Destinations: slices.Clone(destinations)}}, nil
}

// checkGraph makes every rank of n learn whether any rank's sources disagree with the
// destinations the other ranks declared toward it.
func checkGraph(n *Comm, sources, destinations []int) error {
	out := make([]int32, n.size) // edges from this rank to each rank
	for _, d := range destinations {
		out[d]++
	}
	in := make([]int32, n.size) // edges to this rank, as each rank declared them
	if err := Alltoall(n, out, in); err != nil {
		return fmt.Errorf("DistGraph: %w", err)
	}
	for _, s := range sources {
		in[s]--
	}
	bad := []int32{0}
	for r, k := range in {
		if k != 0 {
			bad[0] = int32(r) + 1
		}
	}
	if err := Allreduce(n, bad, bad, Max); err != nil {
		return fmt.Errorf("DistGraph: %w", err)
	}
	if bad[0] != 0 {
		return fmt.Errorf("%w: DistGraph: the edges rank %d declared do not match its neighbours' (counts of edges from a source to its destination differ)",
			ErrTopology, bad[0]-1)
	}
	return nil
}

// Neighbors returns the sources and destinations the graph was made with.
func (g *Graph) Neighbors() (sources, destinations []int) {
	return slices.Clone(g.nb.Sources), slices.Clone(g.nb.Destinations)
}

func (g *Graph) neighborhood() (*Comm, *collective.Neighborhood) {
	if g == nil {
		return nil, &collective.Neighborhood{} // begin reports the nil communicator
	}
	return g.Comm, &g.nb
}
