package topology_test

import (
	"fmt"
	"os"

	"github.com/gorun-hpc/gorun/topology"
)

func ExampleParseCPUSet() {
	s, err := topology.ParseCPUSet("0-3,8,10-11")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Count(), s.Contains(8), s.Contains(9), s)
	// Output: 7 true false 0-3,8,10-11
}

func ExampleParseProcessMapping() {
	// Slurm, 3 nodes, block distribution of 11 ranks.
	nodes, err := topology.ParseProcessMapping("(vector,(0,2,4),(2,1,3))", 11)
	fmt.Println(nodes, err)
	// Cyclic distribution: the pattern repeats.
	nodes, err = topology.ParseProcessMapping("(vector,(0,4,1))", 8)
	fmt.Println(nodes, err)
	// Output:
	// [0 0 0 0 1 1 1 1 2 2 2] <nil>
	// [0 1 2 3 0 1 2 3] <nil>
}

func ExamplePlace() {
	// A two-core machine with SMT, as a launcher would get from Discover.
	all, _ := topology.ParseCPUSet("0-3")
	core0, _ := topology.ParseCPUSet("0,2")
	core1, _ := topology.ParseCPUSet("1,3")
	m := &topology.Machine{
		CPUs: all, Allowed: all, LineSize: 64,
		Packages: []topology.Package{{CPUs: all, Cores: []topology.Core{
			{ID: 0, CPUs: core0}, {ID: 1, CPUs: core1},
		}}},
	}
	placement, err := topology.Place(m, 2, topology.BindDefault, topology.MapCore)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range placement {
		fmt.Printf("rank %d -> CPUs %s (GOMAXPROCS %d)\n", p.Rank, p.CPUs, p.GOMAXPROCS)
	}
	fmt.Println("oversubscribed:", topology.Oversubscribed(len(placement), m.UsableCPUs()))
	// Output:
	// rank 0 -> CPUs 0,2 (GOMAXPROCS 2)
	// rank 1 -> CPUs 1,3 (GOMAXPROCS 2)
	// oversubscribed: false
}

func ExampleDiscover() {
	m, err := topology.Discover()
	if err != nil {
		fmt.Println(err)
		return
	}
	// What `gorun --topology -n 2` prints.
	placement, err := topology.Place(m, 2, topology.BindDefault, topology.MapCore)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.WriteText(os.Stdout, placement); err != nil {
		fmt.Println(err)
	}
}

func ExampleNodeID() {
	id := topology.NodeID(func(k string) string {
		if k == topology.NodeEnv {
			return "node-a" // as if GORUN_NODE=node-a
		}
		return ""
	})
	fmt.Println(id)
	// Output: node-a
}
