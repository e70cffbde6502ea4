package shm

// Protocols by size. A message up to the eager limit is one record in the ring. A larger one
// (or any synchronous send) is announced by an RTS record and moved once the receiver has
// matched it, by one of (the rendezvous protocol; rendezvous.go):
//
//	protoPipe    the receiver answers CTS; the sender streams the payload through the pair's
//	             bulk pipe while the receiver drains it (two copies, overlapped)
//	protoCMA     the receiver reads the sender's pinned buffer with process_vm_readv and
//	             answers FIN (one copy); if the read fails it answers CTS instead
//	protoInline  a small synchronous send: the payload rides in the RTS, the receiver answers
//	             FIN once matched
const (
	protoEager uint8 = iota // not a rendezvous: one record
	protoPipe
	protoCMA
	protoInline
)

var protoNames = [...]string{"eager", "pipelined", "single-copy", "inline-sync"}

// protocol chooses how a message of size bytes travels. cmaOK: the receiver can read this
// rank's memory (its probe succeeded).
func (c *Config) protocol(size int, sync, cmaOK bool) uint8 {
	switch {
	case !sync && size <= c.eagerMax():
		return protoEager
	case sync && size <= c.eagerMax()-rtsBodyLen:
		return protoInline
	case size > 0 && size >= c.CMAMin && size <= c.CMAMax && cmaOK:
		return protoCMA
	}
	return protoPipe
}

// Protocol names the protocol a message of size bytes takes under cfg (zero fields: the
// defaults), for gorun --explain: "eager", "inline-sync", "single-copy" or "pipelined".
func (c Config) Protocol(size int, sync, cmaOK bool) string {
	c.fillSizes()
	if c.DisableCMA {
		cmaOK = false
	}
	return protoNames[c.protocol(size, sync, cmaOK)]
}

// EagerMax is the largest message sent eagerly under cfg (zero fields: the defaults).
func (c Config) EagerMax() int {
	c.fillSizes()
	return c.eagerMax()
}

// rtsBody is the payload of an RTS record (then, for protoInline, the message itself):
//
//	+0 size u64  +8 cookie u64  +16 proto u8  +17..23 zero  +24 addr u64 (protoCMA)
const rtsBodyLen = 32
