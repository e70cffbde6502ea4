package rank

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/internal/pmi"
)

func TestWatchLine(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	if got, want := watchLine(3, key), fmt.Sprintf("3 %s\n", pmi.WatchToken(key, 3)); got != want {
		t.Errorf("watchLine = %q, want %q", got, want)
	}
}

// A rank without the job key does not connect: its line could prove nothing.
func TestWatchNeedsKey(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := watch(ln.Addr().String(), 1, nil); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("watch without a key: %v", err)
	}
}
