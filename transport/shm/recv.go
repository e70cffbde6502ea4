package shm

import (
	"encoding/binary"

	"github.com/gorun-hpc/gorun/transport"
)

// The receiving side. The driver drains each peer's ring (Transport.drain) and hands every
// record to handle: an eager message goes to the sink with its payload still in the ring
// (valid only during Deliver; drain releases the record after handle returns); an RTS goes
// to the sink as an announcement, to be fetched once matched (rendezvous.go); a CTS or FIN
// answers one of this rank's own RTS records.

// handle acts on one record from the peer's ring; the driver calls it, holding no lock.
func (p *peer) handle(rec *record) error {
	switch rec.kind {
	case recEager:
		env := transport.Envelope{Src: p.world, Ctx: rec.ctx, Tag: int(rec.tag), Size: len(rec.payload)}
		p.t.sink.Deliver(env, rec.payload, nil)
	case recRTS:
		b := rec.payload
		size := binary.LittleEndian.Uint64(b[0:])
		an := &announcement{p: p, size: int(size), cookie: binary.LittleEndian.Uint64(b[8:]), proto: b[16],
			addr: binary.LittleEndian.Uint64(b[24:])}
		switch {
		case size > 1<<62:
			return p.rx.corrupt("rts announcing %d bytes", size)
		case an.proto == protoInline:
			if uint64(len(b)-rtsBodyLen) != size {
				return p.rx.corrupt("inline rts of %d bytes announcing %d", len(b)-rtsBodyLen, size)
			}
			an.inline = append([]byte(nil), b[rtsBodyLen:]...)
		case an.proto != protoPipe && an.proto != protoCMA || len(b) != rtsBodyLen:
			return p.rx.corrupt("rts protocol %d, %d bytes", an.proto, len(b))
		}
		p.t.sink.Deliver(transport.Envelope{Src: p.world, Ctx: rec.ctx, Tag: int(rec.tag), Size: int(size)}, nil, an)
	case recCTS, recFin:
		cookie := binary.LittleEndian.Uint64(rec.payload)
		p.mu.Lock()
		s := p.sends[cookie]
		delete(p.sends, cookie)
		p.mu.Unlock()
		if s == nil {
			return p.rx.corrupt("%v for unknown send %d", rec.kind, cookie)
		}
		if rec.kind == recFin {
			s.finish(nil)
		} else {
			p.streams = append(p.streams, s)
		}
	}
	return nil
}
