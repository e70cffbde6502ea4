package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/comm"
)

// nodes reports, for rank 0, which path reaches every rank and the size of its node
// communicator; ranks on the same node (same GORUN_NODE) must use shared memory, others TCP,
// and traffic must go where the path says (transport counters).
func nodes(c *comm.Comm) {
	node, err := c.SplitNode()
	check(err, "split node")
	paths := make([]string, c.Size())
	for r := range c.Size() {
		paths[r], err = c.Path(r)
		check(err, "path")
	}
	// One message to every peer, then the counters must show them on their paths.
	for r := range c.Size() {
		if r != c.Rank() {
			check(comm.Send(c, []byte("x"), r, 70), "send")
		}
	}
	for r := range c.Size() {
		if r != c.Rank() {
			_, err := comm.Recv(c, make([]byte, 1), r, 70)
			check(err, "recv")
		}
	}
	stats := c.Stats()
	for r, p := range paths {
		if r != c.Rank() && stats[p].Messages == 0 {
			fail("path %s to rank %d carried no message: %v", p, r, stats)
		}
	}
	fmt.Printf("nodes: rank %d node size %d paths %s\n", c.Rank(), node.Size(), strings.Join(paths, ","))
}

// allocs measures allocations per blocking Send+Recv of an existing buffer, in a ping-pong
// between ranks 0 and 1 (rank 0 reports it): of float64s, and of particles (structs with
// padding, types.go).
func allocs(c *comm.Comm) {
	if c.Size() < 2 || c.Rank() > 1 {
		return
	}
	for _, size := range []int{8, 4096} {
		measureAllocs(c, make([]float64, size/8), fmt.Sprintf("%d bytes", size))
	}
	measureAllocs(c, make([]particle, 100), "particles: 100 of 40 bytes")
}

func measureAllocs[T any](c *comm.Comm, buf []T, what string) {
	// Warm up: pools and first-use paths (the element type's check among them).
	for range 100 {
		pingPong(c, buf)
	}
	perOp := testing.AllocsPerRun(2000, func() { pingPong(c, buf) })
	if c.Rank() == 0 {
		fmt.Printf("allocs: %s: %.3f allocations per Send+Recv\n", what, perOp)
	}
}

func pingPong[T any](c *comm.Comm, buf []T) {
	if c.Rank() == 0 {
		check(comm.Send(c, buf, 1, 80), "send")
		_, err := comm.Recv(c, buf, 1, 80)
		check(err, "recv")
	} else {
		_, err := comm.Recv(c, buf, 0, 80)
		check(err, "recv")
		check(comm.Send(c, buf, 0, 80), "send")
	}
}
