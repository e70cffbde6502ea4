package shm

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestNewLayoutBounds(t *testing.T) {
	for _, tc := range []struct {
		name                                     string
		nlocal, line, ringCap, bulkCap, collSlot int
		err                                      string
	}{
		{"bulk of MaxInt", 2, 64, 4096, math.MaxInt, 1000, "bulk pipe"},
		{"bulk just above the bound", 2, 64, 4096, MaxBulkBytes + 1, 1000, "bulk pipe"},
		{"no bulk pipe", 2, 64, 4096, 0, 1000, "bulk pipe"},
		{"negative ring", 2, 64, -1, 4096, 1000, "ring"},
		{"ring above 64 MiB", 2, 64, MaxRingBytes + 1, 4096, 1000, "ring"},
		{"ring below 8 lines", 2, 64, 448, 4096, 1000, "below 8 lines"},
		{"collective slot above 1 GiB", 2, 64, 4096, 4096, MaxCollSlot + 1, "collective slot"},
		{"no collective slot", 2, 64, 4096, 4096, 0, "collective slot"},
		{"no ranks", 0, 64, 4096, 4096, 1000, "local ranks"},
		{"too many ranks", MaxLocalRanks + 1, 64, 4096, 4096, 1000, "local ranks"},
		{"line of 16", 2, 16, 4096, 4096, 1000, "cache line"},
		{"line of 2048", 2, 2048, 1 << 16, 4096, 1000, "cache line"},
		{"line not a power of two", 2, 96, 4096, 4096, 1000, "cache line"},
		{"the whole segment above 1 TiB", 1024, 64, MaxRingBytes, MaxBulkBytes, 1000, "above 1024 GiB"},
		{"the most of everything", MaxLocalRanks, MaxLine, MaxRingBytes, MaxBulkBytes, MaxCollSlot, "above 1024 GiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newLayout(tc.nlocal, tc.line, tc.ringCap, tc.bulkCap, tc.collSlot)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("newLayout: %v, want an error with %q", err, tc.err)
			}
		})
	}
	// A line of 32 is allowed: the control blocks then start after the header's 48 bytes.
	l, err := newLayout(2, 32, 1024, 1024, 64)
	if err != nil || l.ctlOff != 64 {
		t.Fatalf("line 32: %+v, %v; want the control blocks at 64", l, err)
	}
	checkRegions(t, &l, l.size)
}

func TestReadLayoutRejects(t *testing.T) {
	good, err := newLayout(3, 64, 4096, 8192, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(h []byte)
		memLen int // 0: good.size
		err    string
	}{
		{"magic", func(h []byte) { h[0] = 'G' }, 0, "not a gorun segment"},
		{"version", func(h []byte) { put32(h, hdrVersionOff, segVersion+1) }, 0, "version"},
		{"nlocal", func(h []byte) { put32(h, hdrNLocalOff, 4) }, 0, "local ranks"},
		{"nlocal 2^32-1", func(h []byte) { put32(h, hdrNLocalOff, ^uint32(0)) }, 0, "local ranks"},
		{"line 16", func(h []byte) { put32(h, hdrLineOff, 16) }, 0, "cache line"},
		{"line 48", func(h []byte) { put32(h, hdrLineOff, 48) }, 0, "cache line"},
		{"line 2^31", func(h []byte) { put32(h, hdrLineOff, 1<<31) }, 0, "out of bounds"},
		{"ring 0", func(h []byte) { put32(h, hdrRingCapOff, 0) }, 0, "ring"},
		{"ring not whole lines", func(h []byte) { put32(h, hdrRingCapOff, 4097) }, 0, "whole lines"},
		{"ring 2^32-1", func(h []byte) { put32(h, hdrRingCapOff, ^uint32(0)) }, 0, "out of bounds"},
		{"bulk 2^62", func(h []byte) { binary.LittleEndian.PutUint64(h[hdrBulkCapOff:], 1<<62) }, 0, "out of bounds"},
		{"bulk 2^64-1", func(h []byte) { binary.LittleEndian.PutUint64(h[hdrBulkCapOff:], ^uint64(0)) }, 0, "out of bounds"},
		{"bulk 0", func(h []byte) { binary.LittleEndian.PutUint64(h[hdrBulkCapOff:], 0) }, 0, "bulk pipe"},
		{"collective slot 0", func(h []byte) { put32(h, hdrCollOff, 0) }, 0, "collective slot"},
		{"collective slot odd lines", func(h []byte) { put32(h, hdrCollOff, 3*64) }, 0, "whole lines"},
		{"size says less", func(h []byte) { binary.LittleEndian.PutUint64(h[hdrSizeOff:], uint64(good.size-4096)) }, 0, "header says"},
		{"mapping shorter than the layout", func(h []byte) {}, 4096, "mapping has"},
		{"mapping shorter than the header", func(h []byte) {}, 40, "not a gorun segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.memLen
			if n == 0 {
				n = good.size
			}
			mem := make([]byte, max(n, hdrLen))
			good.writeHeader(mem)
			tc.edit(mem)
			if _, err := readLayout(mem[:n], 3); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("readLayout: %v, want an error with %q", err, tc.err)
			}
		})
	}
	mem := make([]byte, good.size)
	good.writeHeader(mem)
	for _, chunk := range []int{0, -1, good.bulkCap + 1, math.MaxInt} {
		if _, err := joinLayout(mem, 3, chunk); err == nil {
			t.Errorf("joinLayout with a chunk of %d accepted bulk pipes of %d", chunk, good.bulkCap)
		}
	}
	if l, err := joinLayout(mem, 3, good.bulkCap); err != nil || l != good {
		t.Errorf("joinLayout with a chunk of the whole pipe: %+v, %v", l, err)
	}
}

func put32(h []byte, off int, v uint32) { binary.LittleEndian.PutUint32(h[off:], v) }

// checkRegions fails unless every region of l lies, in order and aligned, inside a mapping of
// memLen bytes.
func checkRegions(t *testing.T, l *layout, memLen int) {
	t.Helper()
	n := l.nlocal
	type region struct {
		name     string
		off, end int
	}
	last := n - 1
	regions := []region{
		{"header", 0, hdrLen},
		{"control blocks", l.ctl(0), l.ctl(last) + l.ctlSize},
		{"rings", l.ring(0, 0), l.ring(last, last) + l.ringSize},
		{"bulk pipes", l.bulk(0, 0), l.bulk(last, last) + l.bulkSize},
		{"arena", l.collOff, l.collSlotOff(n)},
	}
	prev := 0
	for _, r := range regions {
		if r.off < prev || r.end < r.off || r.end > l.size || l.size > memLen || r.off%8 != 0 {
			t.Fatalf("%s at [%d, %d) after %d, in a segment of %d mapped as %d: %+v", r.name, r.off, r.end, prev, l.size, memLen, *l)
		}
		prev = r.end
	}
	if l.summaryWord(last, last)+8 > l.ctl(last)+l.ctlSize || l.ctl(0)+ctlCMAAddrOff+8 > l.ctl(0)+l.line {
		t.Fatalf("control block words outside their lines: %+v", *l)
	}
	if l.ringCap < 8*l.line || l.bulkCap < l.line || l.collSlot/2 < arenaStamp+8 || l.ringCap%l.line != 0 || l.bulkCap%l.line != 0 {
		t.Fatalf("regions too small or not whole lines: %+v", *l)
	}
}

// FuzzReadLayout: the header comes from another process, the node's first rank. Whatever its
// bytes, readLayout never panics, and a layout it accepts has every region inside the
// mapping, over which the transport's views can be built.
func FuzzReadLayout(f *testing.F) {
	for _, p := range [][5]int{{2, 64, 4096, 8192, 1000}, {3, 128, 1024, 128, 256}, {1, 32, 256, 32, 64}} {
		l, err := newLayout(p[0], p[1], p[2], p[3], p[4])
		if err != nil {
			f.Fatal(err)
		}
		hdr := make([]byte, hdrLen)
		l.writeHeader(hdr)
		f.Add(hdr, int8(0), uint32(l.size))
	}
	f.Fuzz(func(t *testing.T, hdr []byte, nlocalDelta int8, memLen uint32) {
		if len(hdr) < hdrNLocalOff+4 {
			hdr = append(hdr, make([]byte, hdrNLocalOff+4-len(hdr))...)
		}
		nlocal := int(binary.LittleEndian.Uint32(hdr[hdrNLocalOff:])) + int(nlocalDelta)
		mem := make([]byte, max(int(memLen%(1<<20)), len(hdr))) // up to 1 MiB
		copy(mem, hdr)
		l, err := readLayout(mem, nlocal)
		if err != nil {
			return
		}
		if l.nlocal != nlocal {
			t.Fatalf("accepted a segment of %d ranks for %d", l.nlocal, nlocal)
		}
		checkRegions(t, &l, len(mem))
		// The views every rank builds over it (init, newPeer, the arena).
		for i := range l.nlocal {
			for j := range l.nlocal {
				newRingRegion(mem[l.ring(i, j):l.ring(i, j)+l.ringSize], l.line)
				newBulkRegion(mem[l.bulk(i, j):l.bulk(i, j)+l.bulkSize], l.line, i)
			}
		}
		newArena(nil, 0, l.nlocal, new(atomic.Uint64), mem[l.collSlotOff(0):l.collSlotOff(l.nlocal)], l.collSlot)
	})
}

// The committed seeds named valid-* are headers readLayout accepts, so that the fuzzer starts
// from the inside of the format (they must follow segVersion).
func TestReadLayoutValidSeeds(t *testing.T) {
	paths, _ := filepath.Glob("testdata/fuzz/FuzzReadLayout/valid-*")
	if len(paths) == 0 {
		t.Fatal("no valid-* seeds")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		var hdr string
		var delta int8
		var memLen uint32
		if len(lines) < 4 || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a seed of FuzzReadLayout", p)
		}
		hdr, err = strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err == nil {
			_, err = fmt.Sscanf(lines[2]+" "+lines[3], "int8(%d) uint32(%d)", &delta, &memLen)
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		mem := make([]byte, memLen)
		copy(mem, hdr)
		nlocal := int(binary.LittleEndian.Uint32(mem[hdrNLocalOff:])) + int(delta)
		if _, err := readLayout(mem, nlocal); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
