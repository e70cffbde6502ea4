package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/transport"
)

const testLine = 64

// heapRing returns the two ends of a ring over ordinary Go memory, so that the race detector
// checks the ordering argument (it cannot see mmap'd memory).
func heapRing(capacity int) (*producer, *consumer) {
	mem := make([]byte, ringBytes(capacity, testLine))
	p := &producer{ringRegion: newRingRegion(mem, testLine)}
	c := &consumer{ringRegion: newRingRegion(mem, testLine), peerRank: 1, maxEager: p.maxPayload()}
	return p, c
}

func payloadFor(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j)
	}
	return b
}

// TestRingStreamUnderRace sends many records of random sizes from one goroutine to another
// through a small ring (so it wraps and fills constantly) and checks every byte, tag and
// sequence number.
func TestRingStreamUnderRace(t *testing.T) {
	p, c := heapRing(4096)
	const n = 20000
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = rng.IntN(p.maxPayload() + 1)
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			pl := payloadFor(i, sizes[i])
			deadline := time.Now().Add(10 * time.Second)
			for !p.write(recEager, 7, int32(i), pl) {
				if time.Now().After(deadline) {
					done <- errors.New("producer stuck on a full ring")
					return
				}
			}
		}
		done <- nil
	}()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < n; {
		rec, ok, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			c.flush()
			if time.Now().After(deadline) {
				t.Fatalf("consumer stuck at record %d", i)
			}
			continue
		}
		if rec.kind != recEager || rec.ctx != 7 || rec.tag != int32(i) || rec.seq != uint16(i+1) {
			t.Fatalf("record %d: %+v", i, rec)
		}
		if !bytes.Equal(rec.payload, payloadFor(i, sizes[i])) {
			t.Fatalf("record %d: payload of %d bytes differs", i, len(rec.payload))
		}
		c.release(rec)
		i++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRingFullThenRoom(t *testing.T) {
	p, c := heapRing(1024)
	big := make([]byte, p.maxPayload())
	writes := 0
	for p.write(recEager, 0, 0, big) {
		writes++
	}
	if writes == 0 {
		t.Fatal("an empty ring refused its largest record")
	}
	if p.write(recEager, 0, 0, big) {
		t.Fatal("a full ring took another record")
	}
	for range writes {
		rec, ok, err := c.next()
		if !ok || err != nil {
			t.Fatalf("next: %v %v", ok, err)
		}
		c.release(rec)
	}
	c.flush()
	if !p.write(recEager, 0, 0, big) {
		t.Fatal("no room after the consumer took everything and published its position")
	}
}

func TestRingWantSpace(t *testing.T) {
	p, c := heapRing(1024)
	for p.write(recEager, 0, 0, make([]byte, 100)) {
	}
	p.requestSpace()
	rec, _, _ := c.next()
	c.release(rec)
	if !c.flush() {
		t.Fatal("the consumer did not report the producer's request for room")
	}
	if c.wantSpace.Load() != 0 {
		t.Fatal("request not cleared")
	}
}

// TestRingRejectsCorruption: whatever a broken peer leaves in the ring, the consumer reports
// ErrCorrupt and never panics or reads outside the ring.
func TestRingRejectsCorruption(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(data []byte)
	}{
		{"wrong stamp", func(d []byte) { binary.LittleEndian.PutUint64(d, 99) }},
		{"huge length", func(d []byte) { binary.LittleEndian.PutUint32(d[8:], 1<<30) }},
		{"unknown kind", func(d []byte) { d[20] = 200 }},
		{"flags", func(d []byte) { d[21] = 1 }},
		{"bad sequence", func(d []byte) { binary.LittleEndian.PutUint16(d[22:], 5) }},
		{"negative tag", func(d []byte) { binary.LittleEndian.PutUint32(d[12:], 0xffffffff) }},
		{"short pad", func(d []byte) { d[20] = byte(recPad) }},
		{"cts with payload", func(d []byte) { d[20] = byte(recCTS) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, c := heapRing(1024)
			if !p.write(recEager, 0, 1, []byte("hello")) {
				t.Fatal("write")
			}
			tc.mutate(c.data)
			_, _, err := c.next()
			if !errors.Is(err, transport.ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzRingRecord: arbitrary bytes in a ring never make the consumer panic or return a
// payload outside the ring.
func FuzzRingRecord(f *testing.F) {
	p, _ := heapRing(512)
	p.write(recEager, 3, 4, []byte("seed"))
	f.Add(append([]byte(nil), p.data...))
	p2, _ := heapRing(512)
	p2.write(recRTS, 0, 0, make([]byte, rtsBodyLen))
	f.Add(append([]byte(nil), p2.data...))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, c := heapRing(512)
		copy(c.data, data)
		for range 8 {
			rec, ok, err := c.next()
			if err != nil || !ok {
				return
			}
			if len(rec.payload) > int(c.cap) || rec.size > c.cap {
				t.Fatalf("record of %d bytes in a %d-byte ring", len(rec.payload), c.cap)
			}
			c.release(rec)
		}
	})
}

func TestLayoutOffsets(t *testing.T) {
	l, err := newLayout(3, 64, 4096, 8192, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"ctl(0)":        64,
		"ctlSize":       2 * 64,
		"ctl(2)":        64 + 2*128,
		"summary(2,1)":  64 + 2*128 + 64,
		"ringOff":       64 + 3*128,
		"ringSize":      64 + 4096,
		"ring(0,1)":     64 + 3*128 + 1*(64+4096),
		"ring(2,1)":     64 + 3*128 + 7*(64+4096),
		"bulkOff":       64 + 3*128 + 9*(64+4096),
		"bulkSize":      128 + 8192,
		"bulk(1,2)":     64 + 3*128 + 9*(64+4096) + 5*(128+8192),
		"collOff":       64 + 3*128 + 9*(64+4096) + 9*(128+8192),
		"collSlot":      1024,
		"slot(2)":       64 + 3*128 + 9*(64+4096) + 9*(128+8192) + 64 + 2*1024,
		"commOff":       64 + 3*128 + 9*(64+4096) + 9*(128+8192) + 64 + 3*1024,
		"commSize":      2*64 + 3*CommSlot,
		"commArena(2)":  64 + 3*128 + 9*(64+4096) + 9*(128+8192) + 64 + 3*1024 + 2*(2*64+3*CommSlot),
		"size":          (64 + 3*128 + 9*(64+4096) + 9*(128+8192) + 64 + 3*1024 + CommArenas*(2*64+3*CommSlot) + 4095) &^ 4095,
		"ring head":     ringHeadOff,
		"ring want":     ringWantSpaceOff,
		"bulk tail":     bulkTailOff,
		"record header": recHeaderLen,
		"rts body":      rtsBodyLen,
	}
	got := map[string]int{
		"ctl(0)": l.ctl(0), "ctlSize": l.ctlSize, "ctl(2)": l.ctl(2),
		"summary(2,1)": l.summaryWord(2, 1), "ringOff": l.ringOff, "ringSize": l.ringSize,
		"ring(0,1)": l.ring(0, 1), "ring(2,1)": l.ring(2, 1), "bulkOff": l.bulkOff, "bulkSize": l.bulkSize,
		"bulk(1,2)": l.bulk(1, 2), "size": l.size, "collOff": l.collOff, "collSlot": l.collSlot,
		"slot(2)": l.collSlotOff(2), "commOff": l.commOff, "commSize": l.commSize, "commArena(2)": l.commArena(2),
		"ring head": 0, "ring want": 8, "bulk tail": 0, "record header": 24, "rts body": 32,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	mem := make([]byte, l.size)
	l.writeHeader(mem)
	back, err := readLayout(mem, 3)
	if err != nil || back != l {
		t.Fatalf("readLayout = %+v, %v", back, err)
	}
	if _, err := readLayout(mem, 4); err == nil {
		t.Fatal("a segment for 3 ranks accepted by a node of 4")
	}
	mem[0] = 'x'
	if _, err := readLayout(mem, 3); err == nil {
		t.Fatal("bad magic accepted")
	}
}

func TestBulkPipeUnderRace(t *testing.T) {
	mem := make([]byte, bulkBytes(4096, testLine))
	w := &bulkWriter{bulkRegion: newBulkRegion(mem, testLine, 1)}
	r := &bulkReader{bulkRegion: newBulkRegion(mem, testLine, 1)}
	msg := payloadFor(3, 1<<20+17)
	go func() {
		for off := 0; off < len(msg); {
			n, err := w.write(msg[off:], 1000)
			if err != nil {
				t.Error(err)
				return
			}
			off += n
		}
	}()
	got := make([]byte, len(msg))
	deadline := time.Now().Add(20 * time.Second)
	for off := 0; off < len(got); {
		n, _, err := r.read(got[off:], len(got)-off, 1500)
		if err != nil {
			t.Fatal(err)
		}
		off += n
		if time.Now().After(deadline) {
			t.Fatal("bulk pipe stuck")
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("bulk data differs")
	}
}
