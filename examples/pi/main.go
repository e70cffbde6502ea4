// Command pi computes π by integrating 4/(1+x²) over [0, 1] with the midpoint rule: each rank
// sums its share of the intervals, and Allreduce adds the shares up.
//
//	go run ./cmd/gorun -n 4 ./examples/pi
//	go run ./cmd/gorun -n 4 ./examples/pi -n 100000000
package main

import (
	"flag"
	"fmt"
	"log"
	"math"

	"github.com/gorun-hpc/gorun/comm"
)

func main() {
	intervals := flag.Int("n", 50_000_000, "number of intervals")
	flag.Parse()

	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()

	// Every rank takes the intervals i ≡ rank (mod size); their sum is the rank's share.
	h := 1 / float64(*intervals)
	var part float64
	for i := world.Rank(); i < *intervals; i += world.Size() {
		x := h * (float64(i) + 0.5)
		part += 4 / (1 + x*x)
	}
	sum := []float64{0}
	if err := comm.Allreduce(world, []float64{part * h}, sum, comm.Sum); err != nil {
		log.Fatal(err)
	}
	if world.Rank() == 0 {
		fmt.Printf("pi ≈ %.15f  (error %.2e, %d intervals on %d ranks)\n", sum[0], math.Abs(sum[0]-math.Pi), *intervals, world.Size())
	}
}
