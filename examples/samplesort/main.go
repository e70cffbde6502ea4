// Command samplesort sorts records spread over the ranks by parallel sample sort, and checks
// that the result is globally sorted and complete:
//
//  1. every rank sorts its own records and picks Size()-1 evenly spaced sample keys;
//  2. Allgather gives every rank every sample; all pick the same Size()-1 splitters from them;
//  3. every rank cuts its sorted records at the splitters into one block per rank, and
//     Alltoall tells each rank how many records it will get from every other;
//  4. Alltoallv moves the blocks (records are structs: sent as they lie in memory, no
//     serialization), and every rank sorts what it received.
//
// Rank r then holds the keys between splitters r-1 and r, sorted.
//
//	go run ./cmd/gorun -n 4 ./examples/samplesort
//	go run ./cmd/gorun -n 8 ./examples/samplesort -n 1000000
package main

import (
	"cmp"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/gorun-hpc/gorun/comm"
)

// Record is what is sorted: a key and a payload that travels with it.
type Record struct {
	Key     uint64
	Payload [3]float64
}

func main() {
	perRank := flag.Int("n", 100_000, "records per rank")
	flag.Parse()

	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	me, n := world.Rank(), world.Size()

	// Each rank's records, from its own seed; the payload repeats the key, so that the check
	// can tell a record that was split from its payload.
	rng := rand.New(rand.NewPCG(uint64(me), 42))
	local := make([]Record, *perRank)
	for i := range local {
		k := rng.Uint64()
		local[i] = Record{Key: k, Payload: [3]float64{float64(k), float64(me), float64(i)}}
	}
	before := checksum(world, local)

	sorted, err := sampleSort(world, local)
	if err != nil {
		log.Fatal(err)
	}
	if err := check(world, sorted, before); err != nil {
		log.Fatalf("rank %d: %v", me, err)
	}
	if me == 0 {
		fmt.Printf("sorted %d records on %d ranks: globally sorted and complete\n", n**perRank, n)
	}
}

func byKey(a, b Record) int { return cmp.Compare(a.Key, b.Key) }

// sampleSort returns this rank's part of the sorted records of every rank.
func sampleSort(c *comm.Comm, local []Record) ([]Record, error) {
	n := c.Size()
	slices.SortFunc(local, byKey)

	// 1-2. Samples from every rank, and the splitters every rank derives from them alike.
	samples := make([]uint64, n-1)
	for i := range samples {
		if len(local) > 0 {
			samples[i] = local[(i+1)*len(local)/n].Key
		}
	}
	all := make([]uint64, n*(n-1))
	if err := comm.Allgather(c, samples, all); err != nil {
		return nil, err
	}
	slices.Sort(all)
	splitters := make([]uint64, n-1)
	for i := range splitters {
		splitters[i] = all[(i+1)*len(all)/n] // evenly spaced among the samples
	}

	// 3. Cut the sorted records at the splitters: block j holds keys in (splitters[j-1],
	// splitters[j]].
	sendCounts := make([]int, n)
	start := 0
	for j := range n {
		end := len(local)
		if j < n-1 {
			end = start + sortedUpTo(local[start:], splitters[j])
		}
		sendCounts[j] = end - start
		start = end
	}
	recvCounts := make([]int, n)
	if err := comm.Alltoall(c, sendCounts, recvCounts); err != nil {
		return nil, err
	}

	// 4. Move the blocks (nil displacements: packed in rank order) and sort what arrived.
	total := 0
	for _, k := range recvCounts {
		total += k
	}
	mine := make([]Record, total)
	if err := comm.Alltoallv(c, local, sendCounts, nil, mine, recvCounts, nil); err != nil {
		return nil, err
	}
	slices.SortFunc(mine, byKey)
	return mine, nil
}

// sortedUpTo is how many of the sorted records have a key at most k.
func sortedUpTo(rs []Record, k uint64) int {
	return sort.Search(len(rs), func(i int) bool { return rs[i].Key > k })
}

// sums is what the check compares before and after: the number of records and a sum of
// their keys and payloads (wrapping), over every rank.
type sums struct{ count, keys, payloads uint64 }

func checksum(c *comm.Comm, rs []Record) sums {
	var s [3]uint64
	s[0] = uint64(len(rs))
	for _, r := range rs {
		s[1] += r.Key
		s[2] += uint64(r.Payload[1])*1_000_003 + uint64(r.Payload[2])
	}
	var all [3]uint64
	if err := comm.Allreduce(c, s[:], all[:], comm.Sum); err != nil {
		log.Fatal(err)
	}
	return sums{all[0], all[1], all[2]}
}

// check verifies that rs is sorted, that every record kept its payload, that the last key
// of each rank is at most the first of the next rank that has any, and that every record
// of the job is somewhere, once.
func check(c *comm.Comm, rs []Record, before sums) error {
	if !slices.IsSortedFunc(rs, byKey) {
		return fmt.Errorf("records not sorted")
	}
	for _, r := range rs {
		if r.Payload[0] != float64(r.Key) {
			return fmt.Errorf("record %d came apart from its payload", r.Key)
		}
	}
	// Every rank's (has records, first key, last key), gathered everywhere.
	edge := []uint64{0, 0, 0}
	if len(rs) > 0 {
		edge = []uint64{1, rs[0].Key, rs[len(rs)-1].Key}
	}
	edges := make([]uint64, 3*c.Size())
	if err := comm.Allgather(c, edge, edges); err != nil {
		return err
	}
	var last uint64
	for r := range c.Size() {
		if edges[3*r] == 0 {
			continue
		}
		if edges[3*r+1] < last {
			return fmt.Errorf("rank %d starts at key %d, below the previous rank's last %d", r, edges[3*r+1], last)
		}
		last = edges[3*r+2]
	}
	if after := checksum(c, rs); after != before {
		return fmt.Errorf("records lost or duplicated: %+v before, %+v after", before, after)
	}
	return nil
}
