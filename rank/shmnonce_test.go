package rank

import (
	"encoding/hex"
	"testing"
)

// Every local rank derives the same nonce; anything else (the key above all) changes it.
func TestShmNonce(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	n := shmNonce(key, "gorun_1", "node-a", 100)
	if b, err := hex.DecodeString(n); err != nil || len(b) != 16 {
		t.Fatalf("nonce %q: want 16 bytes in hex", n)
	}
	if again := shmNonce(append([]byte(nil), key...), "gorun_1", "node-a", 100); again != n {
		t.Errorf("the same inputs gave %q and %q", n, again)
	}
	other := []byte("0123456789abcdef0123456789abcdeF")
	for name, v := range map[string]string{
		"key":  shmNonce(other, "gorun_1", "node-a", 100),
		"job":  shmNonce(key, "gorun_2", "node-a", 100),
		"node": shmNonce(key, "gorun_1", "node-b", 100),
		"pid":  shmNonce(key, "gorun_1", "node-a", 101),
	} {
		if v == n {
			t.Errorf("another %s, the same nonce", name)
		}
	}
}
