package sharedcopy

import (
	"bytes"
	"testing"
)

func TestCopyEverySizeAndAlignment(t *testing.T) {
	src := make([]byte, 70000)
	for i := range src {
		src[i] = byte(i*131 + i>>8)
	}
	for _, n := range []int{0, 1, 7, 511, 512, 513, 4096, 65536, 69000} {
		for _, off := range []int{0, 1, 3, 17} {
			dst := make([]byte, n+off+8)
			got := Copy(dst[off:off+n], src[off:])
			if got != n || !bytes.Equal(dst[off:off+n], src[off:off+n]) {
				t.Fatalf("n=%d off=%d: copied %d, contents differ", n, off, got)
			}
			for _, b := range dst[off+n:] {
				if b != 0 {
					t.Fatalf("n=%d off=%d: wrote past the end", n, off)
				}
			}
		}
	}
	if Copy(make([]byte, 3), src) != 3 || Copy(make([]byte, 600), src[:10]) != 10 {
		t.Fatal("Copy does not stop at the shorter slice")
	}
}
