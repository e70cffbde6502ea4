package sock

import (
	"errors"
	"testing"

	"github.com/gorun-hpc/gorun/transport"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Kind: KindEager, Ctx: 7, Src: 3, Tag: 42, Seq: 9, Len: 100, Size: 100, Cookie: 5, Aux: 6}
	var b [HeaderLen]byte
	h.Put(b[:])
	got, err := decodeHeader(b[:], 3)
	if err != nil {
		t.Fatal(err)
	}
	if got != h {
		t.Fatalf("round trip: got %+v, want %+v", got, h)
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	good := Header{Kind: KindEager, Src: 1, Len: 8, Size: 8}
	cases := []struct {
		name   string
		mutate func(h *Header, b []byte)
	}{
		{"magic", func(_ *Header, b []byte) { b[0] ^= 0xff }},
		{"kind zero", func(_ *Header, b []byte) { b[2] = 0 }},
		{"kind unknown", func(_ *Header, b []byte) { b[2] = byte(KindBye) + 1 }},
		{"kind unassigned", func(_ *Header, b []byte) { b[2] = 5 }},
		{"flags", func(_ *Header, b []byte) { b[3] = 1 }},
		{"wrong source", func(h *Header, b []byte) { h.Src = 2; h.Put(b) }},
		{"negative tag", func(h *Header, b []byte) { h.Tag = -1; h.Put(b) }},
		{"eager too large", func(h *Header, b []byte) { h.Len, h.Size = transport.MaxEager+1, transport.MaxEager+1; h.Put(b) }},
		{"eager len != size", func(h *Header, b []byte) { h.Size = 9; h.Put(b) }},
		{"rts with payload", func(h *Header, b []byte) { h.Kind, h.Len = KindRTS, 1; h.Put(b) }},
		{"rts huge", func(h *Header, b []byte) { h.Kind, h.Len, h.Size = KindRTS, 0, 1<<63; h.Put(b) }},
		{"cts with payload", func(h *Header, b []byte) { h.Kind, h.Len = KindCTS, 4; h.Put(b) }},
		{"bye with payload", func(h *Header, b []byte) { h.Kind, h.Len = KindBye, 4; h.Put(b) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := good
			var b [HeaderLen]byte
			h.Put(b[:])
			tc.mutate(&h, b[:])
			_, err := decodeHeader(b[:], 1)
			if !errors.Is(err, transport.ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
	if _, err := decodeHeader(make([]byte, HeaderLen-1), 0); !errors.Is(err, transport.ErrCorrupt) {
		t.Fatalf("short header: %v", err)
	}
}

// FuzzDecodeHeader: whatever bytes a peer sends, decoding never panics, and a header that
// decodes re-encodes to the same bytes.
func FuzzDecodeHeader(f *testing.F) {
	for _, h := range []Header{
		{Kind: KindEager, Src: 1, Len: 8, Size: 8},
		{Kind: KindRTS, Src: 1, Size: 1 << 30, Cookie: 3},
		{Kind: KindData, Src: 1, Len: 1 << 20, Cookie: 3},
		{Kind: KindBye, Src: 1},
	} {
		var b [HeaderLen]byte
		h.Put(b[:])
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b, 1)
		if err != nil {
			if !errors.Is(err, transport.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		var out [HeaderLen]byte
		h.Put(out[:])
		if string(out[:]) != string(b[:HeaderLen]) {
			t.Fatalf("re-encoding differs")
		}
		if h.Kind == KindEager && h.Len > transport.MaxEager {
			t.Fatalf("accepted eager frame of %d bytes", h.Len)
		}
	})
}
