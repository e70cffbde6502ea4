package sock

import (
	"encoding/binary"
	"fmt"

	"github.com/gorun-hpc/gorun/transport"
)

// Kind says what a frame carries.
type Kind uint8

// The kinds keep their wire values: 5 is not assigned (it was a FIN frame that nothing ever
// sent), and a frame of kind 5 is corrupt like any other unknown kind.
const (
	// KindEager carries a whole message: Size = Len payload bytes follow the header.
	KindEager Kind = 1
	// KindRTS announces a rendezvous message of Size bytes; Cookie names the sender's request.
	KindRTS Kind = 2
	// KindCTS answers an RTS once it is matched: Cookie is the sender's, Aux the receiver's.
	KindCTS Kind = 3
	// KindData carries a rendezvous payload of Len bytes for the receive named by Cookie.
	KindData Kind = 4
	// KindBye is the last frame of an orderly close.
	KindBye Kind = 6
)

// kindNames names the assigned kinds; "" marks a value that is not one.
var kindNames = [...]string{KindEager: "eager", KindRTS: "rts", KindCTS: "cts", KindData: "data", KindBye: "bye"}

// known reports whether k is an assigned kind.
func (k Kind) known() bool { return int(k) < len(kindNames) && kindNames[k] != "" }

func (k Kind) String() string {
	if !k.known() {
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
	return kindNames[k]
}

// HeaderLen is the size of the fixed frame header on the wire.
//
//	offset  size  field
//	 0      2     magic "gR" (0x52 0x67 little-endian: 0x5267)
//	 2      1     kind
//	 3      1     flags (none defined: must be 0)
//	 4      4     context
//	 8      4     source world rank (int32)
//	12      4     tag (int32)
//	16      8     sequence number: counts Eager and RTS frames per ordered pair, from 1
//	24      8     Len: payload bytes following this header
//	32      8     Size: message size (Eager: = Len; RTS: the announced size)
//	40      8     Cookie
//	48      8     Aux
//
// All fields are little-endian.
const HeaderLen = 56

const headerMagic = 0x5267

// Header is a decoded frame header.
type Header struct {
	Kind   Kind
	Ctx    uint32
	Src    int32
	Tag    int32
	Seq    uint64
	Len    uint64
	Size   uint64
	Cookie uint64
	Aux    uint64
}

// Put encodes h into b, which must hold HeaderLen bytes.
func (h *Header) Put(b []byte) {
	_ = b[HeaderLen-1]
	binary.LittleEndian.PutUint16(b[0:], headerMagic)
	b[2] = byte(h.Kind)
	b[3] = 0
	binary.LittleEndian.PutUint32(b[4:], h.Ctx)
	binary.LittleEndian.PutUint32(b[8:], uint32(h.Src))
	binary.LittleEndian.PutUint32(b[12:], uint32(h.Tag))
	binary.LittleEndian.PutUint64(b[16:], h.Seq)
	binary.LittleEndian.PutUint64(b[24:], h.Len)
	binary.LittleEndian.PutUint64(b[32:], h.Size)
	binary.LittleEndian.PutUint64(b[40:], h.Cookie)
	binary.LittleEndian.PutUint64(b[48:], h.Aux)
}

// decodeHeader decodes and validates a frame header that peer sent. Everything a receiver
// would act on is checked here, before any allocation: the magic, the kind, the flags, that
// the source is the peer the connection belongs to, that payload lengths fit the kind and
// transport.MaxEager, and that control frames carry no payload. Sequence numbers and cookies
// are checked by the connection, which knows what it expects.
func decodeHeader(b []byte, peer int) (Header, error) {
	corrupt := func(format string, args ...any) (Header, error) {
		return Header{}, &transport.CorruptError{Peer: peer, Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < HeaderLen {
		return corrupt("short header: %d bytes", len(b))
	}
	if m := binary.LittleEndian.Uint16(b[0:]); m != headerMagic {
		return corrupt("bad magic %#04x", m)
	}
	h := Header{
		Kind:   Kind(b[2]),
		Ctx:    binary.LittleEndian.Uint32(b[4:]),
		Src:    int32(binary.LittleEndian.Uint32(b[8:])),
		Tag:    int32(binary.LittleEndian.Uint32(b[12:])),
		Seq:    binary.LittleEndian.Uint64(b[16:]),
		Len:    binary.LittleEndian.Uint64(b[24:]),
		Size:   binary.LittleEndian.Uint64(b[32:]),
		Cookie: binary.LittleEndian.Uint64(b[40:]),
		Aux:    binary.LittleEndian.Uint64(b[48:]),
	}
	if !h.Kind.known() {
		return corrupt("unknown kind %d", b[2])
	}
	if b[3] != 0 {
		return corrupt("unknown flags %#02x", b[3])
	}
	if int(h.Src) != peer {
		return corrupt("source %d on the connection of rank %d", h.Src, peer)
	}
	if h.Tag < 0 {
		return corrupt("negative tag %d", h.Tag)
	}
	switch h.Kind {
	case KindEager:
		if h.Len != h.Size || h.Len > transport.MaxEager {
			return corrupt("eager frame of %d bytes claiming size %d (max %d)", h.Len, h.Size, transport.MaxEager)
		}
	case KindData:
		if h.Len > maxMessage {
			return corrupt("data frame of %d bytes", h.Len)
		}
	case KindRTS:
		if h.Len != 0 || h.Size > maxMessage {
			return corrupt("rts with %d payload bytes announcing %d", h.Len, h.Size)
		}
	default:
		if h.Len != 0 {
			return corrupt("%v frame with %d payload bytes", h.Kind, h.Len)
		}
	}
	return h, nil
}

// maxMessage is the largest message size a frame may announce: what a Go slice can hold.
const maxMessage = 1<<63 - 1
