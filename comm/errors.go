package comm

import (
	"errors"

	"github.com/gorun-hpc/gorun/collective"
	"github.com/gorun-hpc/gorun/rank"
)

// Errors, usable with errors.Is. Richer errors carry details: *TruncateError (both sizes),
// *PeerLostError (which rank).
var (
	// ErrTruncate: the message was larger than the receive buffer; the buffer got its first
	// part.
	ErrTruncate = rank.ErrTruncate
	// ErrRank: a rank outside the communicator.
	ErrRank = rank.ErrRank
	// ErrTag: a negative tag (only receives and probes may use AnyTag).
	ErrTag = rank.ErrTag
	// ErrPeerLost: a peer process died or became unreachable.
	ErrPeerLost = rank.ErrPeerLost
	// ErrAborted: the job is being taken down.
	ErrAborted = rank.ErrAborted
	// ErrClosed: the communicator (or the world) was closed.
	ErrClosed = rank.ErrClosed
	// ErrCanceled: a request was canceled before it matched.
	ErrCanceled = rank.ErrCanceled
	// ErrCount: a message's size is not a whole number of elements of the receive type.
	ErrCount = errors.New("message size is not a multiple of the element size")
	// ErrOp: a reduction operation not defined on the element type (a bitwise op on floats).
	ErrOp = collective.ErrOp
	// ErrBuffer: buffers of a collective do not have the sizes the call requires.
	ErrBuffer = errors.New("buffer sizes do not fit the operation")
	// ErrTopology: arguments that do not describe a process topology (a grid dimension < 1,
	// more grid cells than ranks, a graph whose two ends disagree on an edge).
	ErrTopology = errors.New("arguments do not describe a valid topology")
	// ErrType: the element type cannot be sent as bytes: it holds pointers, strings, slices,
	// maps, interfaces, channels or funcs (see Elem). *TypeError says which field.
	ErrType = errors.New("element type cannot be sent as bytes")
)

// TruncateError reports a receive buffer smaller than the message (sizes in bytes).
type TruncateError = rank.TruncateError

// PeerLostError names the lost peer by its rank in the world communicator.
type PeerLostError = rank.PeerLostError
