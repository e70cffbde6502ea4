package view

import "testing"

func TestBytesAndAsRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
	}{
		{"nil", nil},
		{"empty", []float64{}},
		{"one", []float64{1.5}},
		{"several", []float64{1, -2, 3.25, 1e300}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := Bytes(tc.in)
			if len(b) != 8*len(tc.in) {
				t.Fatalf("len(Bytes) = %d, want %d", len(b), 8*len(tc.in))
			}
			back := As[float64](b)
			if len(back) != len(tc.in) {
				t.Fatalf("len(As) = %d, want %d", len(back), len(tc.in))
			}
			for i := range back {
				if back[i] != tc.in[i] {
					t.Fatalf("element %d = %v, want %v", i, back[i], tc.in[i])
				}
			}
		})
	}
}

func TestAsDropsPartialElement(t *testing.T) {
	b := make([]byte, 11)
	if got := len(As[uint32](b)); got != 2 {
		t.Fatalf("len(As[uint32](11 bytes)) = %d, want 2", got)
	}
}

type celsius float64

func TestRetypeNamedType(t *testing.T) {
	in := []celsius{1, 2}
	out := Retype[float64](in)
	out[1] = 7
	if in[1] != 7 {
		t.Fatalf("Retype must alias the memory")
	}
}

func TestWords(t *testing.T) {
	b := make([]byte, 16)
	Uint64At(b, 8).Store(0x0102030405060708)
	if b[8] != 8 || b[15] != 1 {
		t.Fatalf("word not stored little-endian at offset 8: %v", b)
	}
	Uint32At(b, 4).Store(9)
	if b[4] != 9 {
		t.Fatalf("32-bit word not stored at 4")
	}
	for _, f := range []func(){
		func() { Uint64At(b, 4) },
		func() { Uint64At(b, 16) },
		func() { Uint32At(b, 2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("misuse did not panic")
				}
			}()
			f()
		}()
	}
}
