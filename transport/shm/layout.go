package shm

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/view"
)

// The node segment, one per node, mapped once by every local rank at start and never
// remapped. Everything in it is a fixed-width little-endian word at a fixed offset from the
// base; references are offsets, never pointers (each process maps it at its own address).
//
//	offset                               size                          written by
//	0        header                      48 bytes, to a line boundary  creator, before sharing
//	                                     (one line, for lines >= 64)
//	ctlOff   control block of rank 0..n-1  n × ctlSize                 see below
//	ringOff  ring[src][dst], src-major   n × n × ringBytes(ringCap)    src produces, dst consumes
//	bulkOff  bulk[src][dst], src-major   n × n × bulkBytes(bulkCap)    src produces, dst consumes
//	collOff  collective arena: 1 line (the barrier counter, every rank adds), then a slot of
//	         collSlot bytes per local rank, two halves each beginning with a stamp (its owner
//	         writes, every rank reads; see arena.go)
//	commOff  CommArenas communicator arenas, each: 1 line (its claim word: how many local
//	         ranks hold it, 0 when free; see ClaimCommArena), 1 line (barrier counter), then a
//	         slot of commSlot bytes per local rank, as in the collective arena
//	size     (end)
//
// (ring[i][i] and bulk[i][i] are never touched; untouched pages of a memfd cost no memory.)
// Every offset is a multiple of the line, so every word is aligned; the bounds below keep
// size under maxSegmentBytes.
//
// Header:
//
//	+0 magic "gorunSEG"  +8 version u32  +12 nlocal u32  +16 line u32  +20 ringCap u32
//	+24 bulkCap u64      +32 size u64    +40 mapped u32 (atomic: ranks that have mapped it)
//	+44 collSlot u32
//
// The creator writes every field but mapped before it hands the segment over (the handoff
// over the Unix socket orders those writes before any other rank's reads). mapped starts at
// 0; each rank adds 1 once it has mapped the segment and, if it offers single copy, stored
// its probe address (cmaProbeAddr, an atomic store; Transport.meet). That address is what
// the add publishes: a rank that loads mapped == nlocal loads it after every rank's add
// (sequentially consistent atomics), so it sees every rank's probe address, which probeCMA
// then reads. Nothing else waits on mapped; cmaState is stored after the wait, and read by
// senders at any time (0, cmaUnknown, until then: no single copy).
//
// Control block of a local rank (the summary on lines of its own, apart from the owner's
// words):
//
//	line 0, the owner writes, others read:   +0 sleeping u32  +4 (unused, zero)  +8 cmaState u32
//	                                         +16 cmaProbeAddr u64
//	                                         (a waker also clears sleeping, with a CAS)
//	line 1.., peers set bits, owner clears:  summary bitmap, one bit per local rank: bit i is set
//	                                         by rank i after it publishes a record in its ring to
//	                                         the owner (notify), cleared by the owner before it
//	                                         drains (Poll); the owner also sets bit i itself when
//	                                         it leaves records in ring i for its next poll (drain)
//
// (+4 held the owner's pid, written and never read; it is left unused rather than the
// offsets moved. A rank of an older gorun that still writes it there changes nothing.)
const (
	segMagic   = "gorunSEG"
	segVersion = 5 // 5: communicator arenas after the collective arena

	hdrMagicOff   = 0
	hdrVersionOff = 8
	hdrNLocalOff  = 12
	hdrLineOff    = 16
	hdrRingCapOff = 20
	hdrBulkCapOff = 24
	hdrSizeOff    = 32
	hdrMappedOff  = 40
	hdrCollOff    = 44

	ctlSleepingOff = 0
	ctlCMAStateOff = 8
	ctlCMAAddrOff  = 16
	// the summary is at line within the block (layout.summaryWord).
)

// Bounds on what a segment may hold. newLayout refuses anything outside them, so that no
// size computed from a layout can overflow an int, and readLayout holds a header another
// process wrote to the same bounds.
const (
	MinLine       = 32      // a control block's first line holds words up to +24
	MaxLine       = 1024    // no CPU has longer lines
	MaxLocalRanks = 1 << 16 // ranks sharing one segment
	MaxRingBytes  = 64 << 20
	MaxBulkBytes  = 1 << 30
	MaxCollSlot   = 1 << 30
	// maxSegmentBytes bounds the whole segment, checked before it is sized or mapped.
	maxSegmentBytes = 1 << 40
	// hdrLen is the header's extent; the control blocks start on the first line after it.
	hdrLen = hdrCollOff + 4
)

// layout is where everything lies in a segment.
type layout struct {
	nlocal   int
	line     int
	ringCap  int // record area of each ring
	bulkCap  int // data area of each bulk pipe
	collSlot int // bytes of each rank's collective slot

	ctlOff, ctlSize   int
	ringOff, ringSize int
	bulkOff, bulkSize int
	collOff           int
	commOff, commSize int // the first communicator arena, and the size of each
	size              int
}

// CommArenas is how many communicator arenas a node segment holds: the collective arenas of
// derived communicators (comm's Split, Dup, Cart, …), taken by a communicator's local ranks
// when it is made and given back when the last of them closes it. A communicator made while
// all are taken runs its collectives point to point.
const CommArenas = 8

// CommSlot is the slot of a rank in a communicator arena (two halves): smaller than the
// world's (a large collective takes more rounds), so that the arenas cost little memory when
// touched.
const CommSlot = 256 << 10

// newLayout computes the layout for nlocal ranks. ringCap, bulkCap and collSlot are rounded up
// to whole lines (collSlot to two, its halves). Every parameter must lie within the bounds
// above; then the segment's size is computed without overflow and checked against
// maxSegmentBytes.
func newLayout(nlocal, line, ringCap, bulkCap, collSlot int) (layout, error) {
	switch {
	case nlocal < 1 || nlocal > MaxLocalRanks:
		return layout{}, fmt.Errorf("shm layout: %d local ranks, want 1 to %d", nlocal, MaxLocalRanks)
	case line < MinLine || line > MaxLine || line&(line-1) != 0:
		return layout{}, fmt.Errorf("shm layout: cache line of %d bytes, want a power of two from %d to %d", line, MinLine, MaxLine)
	case ringCap < 1 || ringCap > MaxRingBytes:
		return layout{}, fmt.Errorf("shm layout: ring of %d bytes, want 1 to %d", ringCap, MaxRingBytes)
	case bulkCap < 1 || bulkCap > MaxBulkBytes:
		return layout{}, fmt.Errorf("shm layout: bulk pipe of %d bytes, want 1 to %d", bulkCap, MaxBulkBytes)
	case collSlot < 1 || collSlot > MaxCollSlot:
		return layout{}, fmt.Errorf("shm layout: collective slot of %d bytes, want 1 to %d", collSlot, MaxCollSlot)
	}
	// Each bound is a multiple of MaxLine, so rounding up stays within it.
	roundUp := func(n int) int { return (n + line - 1) / line * line }
	l := layout{nlocal: nlocal, line: line, ringCap: roundUp(ringCap), bulkCap: roundUp(bulkCap),
		collSlot: 2 * roundUp((collSlot+1)/2)}
	if l.ringCap < 8*line {
		return layout{}, fmt.Errorf("shm layout: ring of %d bytes is below 8 lines of %d", ringCap, line)
	}
	// The offsets in uint64, where nothing can wrap: n² <= 2^32, a ring is < 2^27 bytes with
	// its line, a bulk pipe < 2^31, so n²·bulkSize < 2^63 and the sum of the regions < 2^64.
	n := uint64(nlocal)
	summaryLines := (n + 8*uint64(line) - 1) / (8 * uint64(line)) // bits per line: 8*line
	ctlOff := (uint64(hdrLen) + uint64(line) - 1) / uint64(line) * uint64(line)
	ctlSize := (1 + summaryLines) * uint64(line)
	ringOff := ctlOff + n*ctlSize
	ringSize := uint64(ringBytes(l.ringCap, line))
	bulkOff := ringOff + n*n*ringSize
	bulkSize := uint64(bulkBytes(l.bulkCap, line))
	collOff := bulkOff + n*n*bulkSize
	commOff := collOff + uint64(line) + n*uint64(l.collSlot)
	commSize := 2*uint64(line) + n*uint64(CommSlot)
	end := commOff + CommArenas*commSize
	if end > maxSegmentBytes || end > math.MaxInt-4095 {
		return layout{}, fmt.Errorf("shm layout: %d local ranks with rings of %d and bulk pipes of %d bytes need a segment of %d GiB, above %d GiB",
			nlocal, l.ringCap, l.bulkCap, end>>30, maxSegmentBytes>>30)
	}
	l.ctlOff, l.ctlSize = int(ctlOff), int(ctlSize)
	l.ringOff, l.ringSize = int(ringOff), int(ringSize)
	l.bulkOff, l.bulkSize = int(bulkOff), int(bulkSize)
	l.collOff = int(collOff)
	l.commOff, l.commSize = int(commOff), int(commSize)
	// Round the whole segment to a page so mapping it is exact.
	l.size = (int(end) + 4095) &^ 4095
	return l, nil
}

func (l *layout) ctl(i int) int                  { return l.ctlOff + i*l.ctlSize }
func (l *layout) ring(src, dst int) int          { return l.ringOff + (src*l.nlocal+dst)*l.ringSize }
func (l *layout) bulk(src, dst int) int          { return l.bulkOff + (src*l.nlocal+dst)*l.bulkSize }
func (l *layout) summaryWord(owner, bit int) int { return l.ctl(owner) + l.line + bit/64*8 }
func (l *layout) collSlotOff(i int) int          { return l.collOff + l.line + i*l.collSlot }
func (l *layout) commArena(k int) int            { return l.commOff + k*l.commSize }

// writeHeader stamps the layout into a fresh segment.
func (l *layout) writeHeader(mem []byte) {
	copy(mem[hdrMagicOff:], segMagic)
	binary.LittleEndian.PutUint32(mem[hdrVersionOff:], segVersion)
	binary.LittleEndian.PutUint32(mem[hdrNLocalOff:], uint32(l.nlocal))
	binary.LittleEndian.PutUint32(mem[hdrLineOff:], uint32(l.line))
	binary.LittleEndian.PutUint32(mem[hdrRingCapOff:], uint32(l.ringCap))
	binary.LittleEndian.PutUint64(mem[hdrBulkCapOff:], uint64(l.bulkCap))
	binary.LittleEndian.PutUint64(mem[hdrSizeOff:], uint64(l.size))
	binary.LittleEndian.PutUint32(mem[hdrCollOff:], uint32(l.collSlot))
}

// joinLayout is readLayout for a rank joining the leader's segment: chunk, this rank's step
// of the pipelined copy, must also fit the leader's bulk pipes, or a sender would wait
// forever for room for a whole chunk.
func joinLayout(mem []byte, nlocal, chunk int) (layout, error) {
	l, err := readLayout(mem, nlocal)
	if err != nil {
		return layout{}, err
	}
	if chunk < 1 || chunk > l.bulkCap {
		return layout{}, fmt.Errorf("shm: this rank's chunk of %d bytes (GORUN_SHM_CHUNK) does not fit the bulk pipes of %d bytes that the node's first rank made (its GORUN_SHM_BULK): give every rank the same settings", chunk, l.bulkCap)
	}
	return l, nil
}

// readLayout reads and checks the header of a segment another process wrote; nothing in it
// is trusted. Every field must be what newLayout gives for the header's own parameters (so
// each lies within newLayout's bounds and is already rounded), the segment must be for
// nlocal ranks, and the layout must fit in the mapping, mem.
func readLayout(mem []byte, nlocal int) (layout, error) {
	if len(mem) < hdrLen || string(mem[hdrMagicOff:hdrMagicOff+len(segMagic)]) != segMagic {
		return layout{}, fmt.Errorf("shm: not a gorun segment")
	}
	le := binary.LittleEndian
	if v := le.Uint32(mem[hdrVersionOff:]); v != segVersion {
		return layout{}, fmt.Errorf("shm: segment version %d, want %d (mixed gorun versions?)", v, segVersion)
	}
	if n := le.Uint32(mem[hdrNLocalOff:]); uint64(n) != uint64(nlocal) {
		return layout{}, fmt.Errorf("shm: segment for %d local ranks, this node has %d", n, nlocal)
	}
	line, ringCap := le.Uint32(mem[hdrLineOff:]), le.Uint32(mem[hdrRingCapOff:])
	bulkCap, collSlot := le.Uint64(mem[hdrBulkCapOff:]), le.Uint32(mem[hdrCollOff:])
	size := le.Uint64(mem[hdrSizeOff:])
	// Bound the fields before converting them to int, so that none wraps on the way.
	if line > MaxLine || ringCap > MaxRingBytes || bulkCap > MaxBulkBytes || collSlot > MaxCollSlot {
		return layout{}, fmt.Errorf("shm: segment header: line %d, ring %d, bulk pipe %d, collective slot %d bytes: out of bounds",
			line, ringCap, bulkCap, collSlot)
	}
	l, err := newLayout(nlocal, int(line), int(ringCap), int(bulkCap), int(collSlot))
	if err != nil {
		return layout{}, fmt.Errorf("shm: segment header: %w", err)
	}
	if uint64(l.ringCap) != uint64(ringCap) || uint64(l.bulkCap) != bulkCap || uint64(l.collSlot) != uint64(collSlot) {
		return layout{}, fmt.Errorf("shm: segment header: ring %d, bulk pipe %d, collective slot %d bytes are not whole lines of %d",
			ringCap, bulkCap, collSlot, line)
	}
	if size != uint64(l.size) || l.size > len(mem) {
		return layout{}, fmt.Errorf("shm: segment header says %d bytes, layout needs %d, mapping has %d", size, l.size, len(mem))
	}
	return l, nil
}

// mappedCount is the header's count of local ranks that have mapped the segment and published
// their probe address (see the header's picture for what it publishes).
func mappedCount(mem []byte) *atomic.Uint32 { return view.Uint32At(mem, hdrMappedOff) }
