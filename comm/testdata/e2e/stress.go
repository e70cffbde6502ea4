package main

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"

	"github.com/gorun-hpc/gorun/comm"
)

// stress: every rank sends every other rank perPair messages of random sizes (0 B to 4 MiB,
// mostly small) and tags, interleaving destinations at random, while another goroutine
// receives everything with AnySource/AnyTag. Each message carries (sender, sequence number,
// CRC of the rest): nothing may be lost, duplicated, corrupted or reordered per sender.
func stress(c *comm.Comm) {
	perPair := 150
	if v := os.Getenv("E2E_STRESS_PER_PAIR"); v != "" {
		perPair, _ = strconv.Atoi(v)
	}
	me, n := c.Rank(), c.Size()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		receiveAll(c, perPair*(n-1))
	}()
	rng := rand.New(rand.NewPCG(uint64(me), 99))
	var order []int
	for r := range n {
		if r != me {
			for range perPair {
				order = append(order, r)
			}
		}
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	seq := make([]uint64, n)
	buf := make([]byte, 4<<20)
	for _, dst := range order {
		size := stressSize(rng)
		msg := buf[:size]
		seq[dst]++
		stamp(msg, me, seq[dst], rng)
		check(comm.Send(c, msg, dst, rng.IntN(10)), "stress send to %d", dst)
	}
	wg.Wait()
}

func stressSize(rng *rand.Rand) int {
	switch p := rng.IntN(100); {
	case p < 70:
		return 16 + rng.IntN(1024)
	case p < 90:
		return 1024 + rng.IntN(64<<10)
	default:
		return 64<<10 + rng.IntN(4<<20-64<<10)
	}
}

// stamp writes sender and sequence number, random bytes, and the CRC of all but itself.
func stamp(msg []byte, sender int, seq uint64, rng *rand.Rand) {
	binary.LittleEndian.PutUint32(msg[0:], uint32(sender))
	binary.LittleEndian.PutUint64(msg[4:], seq)
	for i := 16; i+8 <= len(msg); i += 8 {
		binary.LittleEndian.PutUint64(msg[i:], rng.Uint64())
	}
	binary.LittleEndian.PutUint32(msg[12:], crc32.ChecksumIEEE(msg[16:]))
}

func receiveAll(c *comm.Comm, total int) {
	last := make([]uint64, c.Size())
	buf := make([]byte, 4<<20)
	for range total {
		st, err := comm.Recv(c, buf, comm.AnySource, comm.AnyTag)
		check(err, "stress recv")
		msg := buf[:st.Count]
		if len(msg) < 16 {
			fail("stress: %d-byte message", len(msg))
		}
		sender := int(binary.LittleEndian.Uint32(msg[0:]))
		seq := binary.LittleEndian.Uint64(msg[4:])
		if sender != st.Source {
			fail("stress: message from %d claims sender %d", st.Source, sender)
		}
		if seq != last[sender]+1 {
			fail("stress: from %d got sequence %d after %d (lost, duplicated or reordered)", sender, seq, last[sender])
		}
		last[sender] = seq
		if crc32.ChecksumIEEE(msg[16:]) != binary.LittleEndian.Uint32(msg[12:]) {
			fail("stress: message %d from %d (%d bytes) is corrupt", seq, sender, len(msg))
		}
	}
	if c.Rank() == 0 {
		fmt.Println("stress: all messages arrived intact and in order")
	}
}
