package rank

import (
	"errors"
	"fmt"

	"github.com/gorun-hpc/gorun/transport"
)

// The errors every layer above reports; comm re-exports them. Richer errors below match them
// with errors.Is.
var (
	// ErrTruncate: a message was larger than the receive buffer.
	ErrTruncate = errors.New("message truncated")
	// ErrRank: a rank outside the communicator.
	ErrRank = errors.New("rank out of range")
	// ErrTag: a negative tag where a real tag is needed.
	ErrTag = errors.New("invalid tag")
	// ErrPeerLost: a peer process died or became unreachable.
	ErrPeerLost = errors.New("peer lost")
	// ErrAborted: the job is being taken down.
	ErrAborted = errors.New("job aborted")
	// ErrClosed: use after (or during) Close; also what pending requests complete with when
	// Close ends them.
	ErrClosed = transport.ErrClosed
	// ErrCanceled: a request was canceled before it matched.
	ErrCanceled = errors.New("request canceled")
)

// TruncateError reports a receive whose buffer was smaller than the message. The first Cap
// bytes were delivered; the rest was dropped.
type TruncateError struct {
	Size int // message size in bytes
	Cap  int // receive buffer size in bytes
}

func (e *TruncateError) Error() string {
	return fmt.Sprintf("message truncated: %d bytes sent, receive buffer holds %d", e.Size, e.Cap)
}

func (e *TruncateError) Is(target error) bool { return target == ErrTruncate }

// PeerLostError names the peer that was lost and why.
type PeerLostError struct {
	Rank int   // world rank of the lost peer
	Err  error // what the transport saw
}

func (e *PeerLostError) Error() string {
	return fmt.Sprintf("rank %d lost: %v", e.Rank, e.Err)
}

func (e *PeerLostError) Is(target error) bool { return target == ErrPeerLost }

func (e *PeerLostError) Unwrap() error { return e.Err }
