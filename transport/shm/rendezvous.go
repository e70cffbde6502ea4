package shm

import (
	"github.com/gorun-hpc/gorun/transport"
)

// The rendezvous protocol, for messages above the eager limit and synchronous sends (the
// protocols are listed in protocol.go):
//
//	sender                                  receiver
//	Send: an RTS record (size, cookie,  ->   handle: the sink gets an announcement;
//	      proto)                             the match engine matches it: Fetch
//	  protoInline: the payload in the RTS    copies the payload out, FIN
//	  protoCMA: the buffer pinned, its       cmaRead (process_vm_readv), FIN; if the
//	            address in the RTS           kernel refuses, on as protoPipe
//	  protoPipe                              appends a largeRecv to fetches, CTS
//	handle(CTS): appends the send to    <-
//	streams
//	pumpOut: chunks into bulkW          ->   pumpIn: chunks out of bulkR into the fetch
//	The send completes at FIN (handle) or after its last chunk (pumpOut), and unpins.
//
// The cookie names the send in its CTS or FIN (p.sends); the bulk pipe carries the payloads
// of the sends in the order their CTS arrived, which is the order the receiver matched them
// in, and so the order of fetches.

// announcement is an RTS that arrived: a large message its sender announced. It is the
// transport.Rendezvous handed to the sink with the envelope; Fetch moves the payload once
// the message is matched.
type announcement struct {
	p      *peer
	size   int
	cookie uint64
	proto  uint8
	addr   uint64 // protoCMA: the payload's address in the sender (see addrOf)
	inline []byte // protoInline: the payload, copied out of the ring
}

// Fetch implements transport.Rendezvous. It takes p.mu and p.inMu in turn, never both, and
// tells c with neither held.
func (an *announcement) Fetch(dst []byte, c transport.Completion) {
	p := an.p
	if err := p.lostErr(); err != nil {
		c.Complete(err)
		return
	}
	switch an.proto {
	case protoInline:
		copy(dst, an.inline)
		p.control(recFin, an.cookie)
		c.Complete(nil)
		return
	case protoCMA:
		if err := cmaRead(p.pid, an.addr, dst); err == nil {
			p.control(recFin, an.cookie)
			c.Complete(nil)
			return
		}
		// The kernel refused: fall back to the pipelined path.
	}
	p.inMu.Lock()
	if err := p.inEnded; err != nil {
		p.inMu.Unlock()
		c.Complete(err)
		return
	}
	p.fetches = append(p.fetches, &largeRecv{dst: dst, size: an.size, done: c})
	p.nFetch.Store(int32(len(p.fetches)))
	p.inMu.Unlock()
	p.control(recCTS, an.cookie)
	p.t.Wake() // the driver may be asleep; it must start draining
}
