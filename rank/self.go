package rank

import (
	"sync/atomic"

	"github.com/gorun-hpc/gorun/transport"
)

// The types the transports and the matcher see through transport's interfaces.
var (
	_ transport.Endpoint   = (*selfEndpoint)(nil)
	_ transport.Counted    = (*selfEndpoint)(nil)
	_ transport.Rendezvous = (*selfRendezvous)(nil)
	_ transport.Sink       = (*matcher)(nil)
	_ transport.Completion = (*Request)(nil)
)

// selfEndpoint carries messages a rank sends to itself. Small ones are delivered at once (the
// matcher copies them if no receive is posted); large and synchronous ones by a rendezvous
// that copies straight from the send buffer into the receive buffer once matched.
type selfEndpoint struct {
	m             *matcher
	eagerLimit    int
	messages, len atomic.Uint64
}

// Sent implements transport.Counted.
func (s *selfEndpoint) Sent() transport.Counters {
	return transport.Counters{Messages: s.messages.Load(), Bytes: s.len.Load()}
}

func (s *selfEndpoint) Send(env transport.Envelope, payload []byte, sync bool, c transport.Completion) {
	s.messages.Add(1)
	s.len.Add(uint64(len(payload)))
	if !sync && len(payload) <= s.eagerLimit {
		s.m.Deliver(env, payload, nil)
		c.Complete(nil)
		return
	}
	s.m.Deliver(env, nil, &selfRendezvous{src: payload, sent: c})
}

type selfRendezvous struct {
	src  []byte
	sent transport.Completion
}

func (r *selfRendezvous) Fetch(dst []byte, c transport.Completion) {
	copy(dst, r.src)
	r.sent.Complete(nil)
	c.Complete(nil)
}
