package shm

import (
	"encoding/binary"
	"testing"

	"github.com/gorun-hpc/gorun/internal/view"
)

// TestHeaderAndControlOffsets pins the words of the header and of a control block the way
// TestLayoutOffsets pins the regions: the constants against the offsets layout.go's pictures
// give, then the bytes writeHeader writes and the words the transport's views point at.
func TestHeaderAndControlOffsets(t *testing.T) {
	want := map[string]int{
		"magic": 0, "version": 8, "nlocal": 12, "line": 16, "ringCap": 20, "bulkCap": 24,
		"size": 32, "mapped": 40, "collSlot": 44, "header length": 48,
		"sleeping": 0, "cmaState": 8, "cmaProbeAddr": 16,
		"ring wantSpace": 8, "bulk wantSpace (from the head line)": 8,
	}
	got := map[string]int{
		"magic": hdrMagicOff, "version": hdrVersionOff, "nlocal": hdrNLocalOff, "line": hdrLineOff,
		"ringCap": hdrRingCapOff, "bulkCap": hdrBulkCapOff, "size": hdrSizeOff, "mapped": hdrMappedOff,
		"collSlot": hdrCollOff, "header length": hdrLen,
		"sleeping": ctlSleepingOff, "cmaState": ctlCMAStateOff, "cmaProbeAddr": ctlCMAAddrOff,
		"ring wantSpace": ringWantSpaceOff, "bulk wantSpace (from the head line)": bulkWantSpaceOff,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s at +%d, want +%d", k, got[k], v)
		}
	}

	// The header's bytes, at the offsets of its picture.
	const n, line = 3, 64
	l, err := newLayout(n, line, 4096, 8192, 1000)
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, l.size)
	l.writeHeader(mem)
	le := binary.LittleEndian
	if string(mem[0:8]) != "gorunSEG" {
		t.Errorf("magic %q", mem[0:8])
	}
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"version", uint64(le.Uint32(mem[8:])), segVersion},
		{"nlocal", uint64(le.Uint32(mem[12:])), n},
		{"line", uint64(le.Uint32(mem[16:])), line},
		{"ringCap", uint64(le.Uint32(mem[20:])), uint64(l.ringCap)},
		{"bulkCap", le.Uint64(mem[24:]), uint64(l.bulkCap)},
		{"size", le.Uint64(mem[32:]), uint64(l.size)},
		{"mapped (ranks add to it; the creator writes 0)", uint64(le.Uint32(mem[40:])), 0},
		{"collSlot", uint64(le.Uint32(mem[44:])), uint64(l.collSlot)},
	} {
		if f.got != f.want {
			t.Errorf("header %s = %d, want %d", f.name, f.got, f.want)
		}
	}
	if mappedCount(mem) != view.Uint32At(mem, 40) {
		t.Error("mappedCount is not the word at +40")
	}

	// The control-block words the transport of local rank 1 uses, over heap memory.
	cfg := Config{Sink: &sink{}, Self: 1, Local: []int{0, 1, 2}, Pids: []int{-1, -1, -1}, Line: line,
		RingBytes: 4096, BulkBytes: 8192, Chunk: 4096, CollSlot: 1000, DisableCMA: true, SummaryAbove: -1}
	cfg.fillSizes()
	tr := &Transport{cfg: cfg, seg: &segment{mem: mem}, lay: l, me: 1, sink: cfg.Sink}
	tr.init([]int{-1, -1, -1})
	ctl := func(i, off int) int { return l.ctl(i) + off }
	if tr.sleeping != view.Uint32At(mem, ctl(1, 0)) {
		t.Error("this rank's sleeping word is not at +0 of its control block")
	}
	if len(tr.summary) != 1 || tr.summary[0] != view.Uint64At(mem, ctl(1, line)) {
		t.Error("this rank's summary is not the word at +line of its control block")
	}
	for _, i := range []int{0, 2} {
		p := tr.peers[i]
		if p.sleeping != view.Uint32At(mem, ctl(i, 0)) {
			t.Errorf("peer %d's sleeping word is not at +0 of its control block", i)
		}
		if p.cmaState != view.Uint32At(mem, ctl(i, 8)) {
			t.Errorf("peer %d's cmaState is not at +8 of its control block", i)
		}
		if p.summary != view.Uint64At(mem, ctl(i, line)) || p.summaryBit != 1<<1 {
			t.Errorf("this rank's bit in peer %d's summary is not bit 1 of the word at +line", i)
		}
		if p.rx.wantSpace != view.Uint32At(mem, l.ring(i, 1)+8) || p.bulkW.wantSpace != view.Uint32At(mem, l.bulk(1, i)+line+8) {
			t.Errorf("the wantSpace words of the ring from and bulk pipe to peer %d are misplaced", i)
		}
	}
}
