// Package transport defines what a transport (shared memory within a node, sockets between
// nodes) does for a rank, and the pieces that more than one package needs: the message
// envelope, the errors for a closed transport and for corrupt bytes from a peer, and MaxEager.
// Each transport owns its wire format (transport/sock its frame header, transport/shm its
// segment layout and ring records).
//
// A transport moves bytes; it does not match. The rank's matching engine implements Sink and
// receives every arrived message in the order its sender sent it; a transport implements
// Endpoint (one per peer) to send. Large messages travel by rendezvous: the sender announces
// the message (RTS), the engine matches it to a receive, and then asks the transport to fetch
// the payload into the receive buffer (Rendezvous.Fetch), so no large message is ever buffered
// unexpectedly.
package transport

import (
	"errors"
	"fmt"
	"time"
)

// ErrClosed completes whatever a transport still holds when it is closed (a send nobody
// matched, a fetch whose data never came), and whatever fails because this rank, or — after
// the orderly goodbye that only Close sends — the peer, has closed. The rank re-exports it as
// its own ErrClosed, so the program sees one error.
var ErrClosed = errors.New("closed")

// ErrCorrupt is the root of every error about bytes from a peer that break the protocol.
var ErrCorrupt = errors.New("corrupt frame")

// CorruptError says what was wrong with what a peer sent (a frame, a ring record). It matches
// ErrCorrupt with errors.Is.
type CorruptError struct {
	Peer   int
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt frame from rank %d: %s", e.Peer, e.Reason)
}

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// MaxEager bounds the payload of an eager frame on a socket whatever the tuning: a receiver
// never allocates more than this for a message it did not ask for, and larger messages go by
// rendezvous. transport/sock enforces it; the rank bounds its socket eager limit by it.
const MaxEager = 1 << 20

// Envelope is what matching looks at: who sent the message, on which context, with which tag,
// and how many bytes it carries.
type Envelope struct {
	Src  int    // world rank of the sender
	Ctx  uint32 // communicator context
	Tag  int
	Size int // message size in bytes
}

// Completion is told when an operation carried out by a transport has finished: a send whose
// buffer may be reused, or a fetch whose data has landed. Complete is called exactly once, from
// any goroutine, and must not block.
type Completion interface {
	Complete(err error)
}

// Rendezvous fetches the payload of a large message once the engine has matched it.
type Rendezvous interface {
	// Fetch delivers the message into dst. If the message is longer than dst, the first
	// len(dst) bytes land there and the rest is discarded. Completion is reported to c. Fetch
	// must not block on the peer and may be called from any goroutine, including from inside
	// Sink.Deliver.
	Fetch(dst []byte, c Completion)
}

// Sink receives what transports read from peers. The rank's matching engine implements it; it
// is safe for concurrent use by several transports.
type Sink interface {
	// Deliver hands over one arrived message. Messages of one sender arrive in the order they
	// were sent. For an eager message, payload holds the whole message and is valid only during
	// the call; r is nil. For a rendezvous message, payload is nil and r fetches the data once
	// the message is matched.
	Deliver(env Envelope, payload []byte, r Rendezvous)
	// Lost reports that a peer can no longer be reached (its process died, its connection
	// broke, or it sent corrupt data). Every operation that involves the peer must fail.
	Lost(peer int, err error)
}

// Endpoint sends to one peer.
type Endpoint interface {
	// Send transmits a message. If sync is set, the rendezvous protocol is used whatever the
	// size, so that c learns of completion only once the receiver has matched the message
	// (MPI's synchronous mode). Until c is told, payload belongs to the transport. Send does
	// not wait for the peer: where the way is blocked it queues the message.
	Send(env Envelope, payload []byte, sync bool, c Completion)
}

// Poller is a transport that makes progress only when a waiting goroutine drives it, as
// shared-memory rings do. At most one goroutine drives a Poller at a time.
type Poller interface {
	// Poll does whatever work is ready without blocking and reports whether it did any.
	Poll() bool
	// Sleep blocks until a peer rings this rank's doorbell, Wake is called, or d passes. It
	// declares the rank sleeping, then re-checks for work and calls ready, and does not block
	// if either finds something: whoever makes ready true (a socket reader completing a
	// request, a local rank publishing a flag) calls Wake or rings after making it true, so a
	// wake-up that races with the sleep is never lost.
	Sleep(d time.Duration, ready func() bool)
	// Wake rouses a goroutine blocked in Sleep; it is cheap when none is. Any goroutine may
	// call it (e.g. a socket reader that completed a request the sleeper waits for).
	Wake()
	// Check reports a peer found dead since the last call (through Sink.Lost) and is called
	// between sleeps; it is cheap.
	Check()
}

// Counters count the messages (and their payload bytes) a transport has sent to one peer,
// control traffic excluded.
type Counters struct {
	Messages, Bytes uint64
}

// Counted is implemented by endpoints that count what they send. Sent is safe for
// concurrent use; the counts are taken under the locks a send holds anyway, so counting adds
// nothing to the message path.
type Counted interface {
	Sent() Counters
}
