package shm

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/view"
)

// The node segment, one per node, mapped once by every local rank at start and never
// remapped. Everything in it is a fixed-width little-endian word at a fixed offset from the
// base; references are offsets, never pointers (each process maps it at its own address).
//
//	offset                               size                          written by
//	0        header                      1 line                        creator, before sharing
//	ctlOff   control block of rank 0..n-1  n × ctlSize                 see below
//	ringOff  ring[src][dst], src-major   n × n × ringBytes(ringCap)    src produces, dst consumes
//	bulkOff  bulk[src][dst], src-major   n × n × bulkBytes(bulkCap)    src produces, dst consumes
//	collOff  collective arena: 1 line (the barrier counter, every rank adds), then a slot of
//	         collSlot bytes per local rank, two halves each beginning with a stamp (its owner
//	         writes, every rank reads; see arena.go)
//	size     (end)
//
// (ring[i][i] and bulk[i][i] are never touched; untouched pages of a memfd cost no memory.)
//
// Header:
//
//	+0 magic "gorunSEG"  +8 version u32  +12 nlocal u32  +16 line u32  +20 ringCap u32
//	+24 bulkCap u64      +32 size u64    +40 mapped u32 (atomic: ranks that have mapped it)
//	+44 collSlot u32
//
// Control block of a local rank (each group on its own line, so that words written by
// different processes never share a line):
//
//	line 0, the owner writes, others read:   +0 sleeping u32  +4 pid u32  +8 cmaState u32
//	                                         +16 cmaProbeAddr u64
//	                                         (a waker also clears sleeping, with a CAS)
//	line 1, others set bits, owner clears:   summary bitmap, one bit per local rank
const (
	segMagic   = "gorunSEG"
	segVersion = 3

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
	ctlPidOff      = 4
	ctlCMAStateOff = 8
	ctlCMAAddrOff  = 16
	// the summary is at line within the block.
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
	size              int
}

// newLayout computes the layout for nlocal ranks. ringCap, bulkCap and collSlot are rounded up
// to whole lines (collSlot to two, its halves).
func newLayout(nlocal, line, ringCap, bulkCap, collSlot int) (layout, error) {
	if nlocal < 1 || line < 32 || line&(line-1) != 0 {
		return layout{}, fmt.Errorf("shm layout: %d ranks, line %d", nlocal, line)
	}
	roundUp := func(n int) int { return (n + line - 1) / line * line }
	l := layout{nlocal: nlocal, line: line, ringCap: roundUp(ringCap), bulkCap: roundUp(bulkCap),
		collSlot: 2 * roundUp((collSlot+1)/2)}
	if l.ringCap < 8*line {
		return layout{}, fmt.Errorf("shm layout: ring of %d bytes is too small", ringCap)
	}
	summaryLines := (nlocal + 8*line - 1) / (8 * line) // bits per line: 8*line
	l.ctlOff = line
	l.ctlSize = (1 + summaryLines) * line
	l.ringOff = l.ctlOff + nlocal*l.ctlSize
	l.ringSize = ringBytes(l.ringCap, line)
	l.bulkOff = l.ringOff + nlocal*nlocal*l.ringSize
	l.bulkSize = bulkBytes(l.bulkCap, line)
	l.collOff = l.bulkOff + nlocal*nlocal*l.bulkSize
	l.size = l.collOff + line + nlocal*l.collSlot
	// Round the whole segment to a page so mapping it is exact.
	l.size = (l.size + 4095) &^ 4095
	return l, nil
}

func (l *layout) ctl(i int) int                  { return l.ctlOff + i*l.ctlSize }
func (l *layout) ring(src, dst int) int          { return l.ringOff + (src*l.nlocal+dst)*l.ringSize }
func (l *layout) bulk(src, dst int) int          { return l.bulkOff + (src*l.nlocal+dst)*l.bulkSize }
func (l *layout) summaryWord(owner, bit int) int { return l.ctl(owner) + l.line + bit/64*8 }
func (l *layout) collSlotOff(i int) int          { return l.collOff + l.line + i*l.collSlot }

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

// readLayout reads and checks the header of a segment someone else made: the layout it
// describes must be the one newLayout gives for its parameters, and fit in the mapping.
func readLayout(mem []byte, nlocal int) (layout, error) {
	if len(mem) < 64 || string(mem[:8]) != segMagic {
		return layout{}, fmt.Errorf("shm: not a gorun segment")
	}
	if v := binary.LittleEndian.Uint32(mem[hdrVersionOff:]); v != segVersion {
		return layout{}, fmt.Errorf("shm: segment version %d, want %d (mixed gorun versions?)", v, segVersion)
	}
	n := int(binary.LittleEndian.Uint32(mem[hdrNLocalOff:]))
	if n != nlocal {
		return layout{}, fmt.Errorf("shm: segment for %d local ranks, this node has %d", n, nlocal)
	}
	bulkCap := binary.LittleEndian.Uint64(mem[hdrBulkCapOff:])
	if bulkCap > 1<<40 {
		return layout{}, fmt.Errorf("shm: bulk capacity %d", bulkCap)
	}
	l, err := newLayout(n, int(binary.LittleEndian.Uint32(mem[hdrLineOff:])),
		int(binary.LittleEndian.Uint32(mem[hdrRingCapOff:])), int(bulkCap), int(binary.LittleEndian.Uint32(mem[hdrCollOff:])))
	if err != nil {
		return layout{}, err
	}
	if size := binary.LittleEndian.Uint64(mem[hdrSizeOff:]); size != uint64(l.size) || l.size > len(mem) {
		return layout{}, fmt.Errorf("shm: segment header says %d bytes, layout needs %d, mapping has %d", size, l.size, len(mem))
	}
	return l, nil
}

// mapped is the count of local ranks that have mapped the segment.
func mappedCount(mem []byte) *atomic.Uint32 { return view.Uint32At(mem, hdrMappedOff) }
