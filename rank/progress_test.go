package rank

import (
	"testing"
	"time"
)

// A waiting rank spins while every local rank has a CPU (briefly when socket peers must be
// heard too), and yields instead on an oversubscribed node; what the program sets wins.
func TestSpinPolicy(t *testing.T) {
	alone := nodeInfo{localRanks: []int{0, 1}, nodeCount: 1}
	over := nodeInfo{localRanks: []int{0, 1}, nodeCount: 1, oversubscribed: true}
	mixed := nodeInfo{localRanks: []int{0, 1}, nodeCount: 2}
	for _, tc := range []struct {
		name   string
		cfg    Config
		node   nodeInfo
		spin   time.Duration
		yields int
	}{
		{"a CPU for every rank", Config{}, alone, defaultSpin, 0},
		{"oversubscribed", Config{}, over, -1, defaultYields},
		{"shared memory and sockets", Config{Transport: "auto"}, mixed, mixedSpin, 0},
		{"sockets only", Config{Transport: "tcp"}, mixed, defaultSpin, 0},
		{"unix sockets", Config{Transport: "unix"}, mixed, defaultSpin, 0},
		{"one rank on each node", Config{}, nodeInfo{localRanks: []int{0}, nodeCount: 2}, defaultSpin, 0},
		{"oversubscribed with sockets", Config{}, nodeInfo{localRanks: []int{0, 1}, nodeCount: 2, oversubscribed: true}, -1, defaultYields},
		{"program's spin and yields", Config{Spin: time.Millisecond, Yields: 3}, over, time.Millisecond, 3},
		{"program says never", Config{Spin: -1, Yields: -1}, over, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if spin, yields := spinPolicy(tc.cfg, tc.node); spin != tc.spin || yields != tc.yields {
				t.Errorf("spin %v, yields %d; want %v, %d", spin, yields, tc.spin, tc.yields)
			}
		})
	}
}
