package pmi

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestPortJoin: ranks join over TCP with PMI_PORT and PMI_ID, exchange values through the
// key-value space, and finalize, as under Hydra's -pmi-port.
func TestPortJoin(t *testing.T) {
	const n = 3
	s, err := NewServer(ServerConfig{Size: n, KVSName: "kvs_port_test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends := make(chan End, n)
	go s.ServePort(ctx, ln, func(rank int, end End, err error) {
		if err != nil {
			t.Errorf("rank %d: %v", rank, err)
		}
		ends <- end
	})
	defer ln.Close()
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env := map[string]string{"PMI_PORT": ln.Addr().String(), "PMI_ID": itoa(r)}
			c, err := Connect(func(k string) string { return env[k] })
			if err != nil {
				t.Error(err)
				return
			}
			if c.Rank() != r || c.Size() != n || c.KVSName() != "kvs_port_test" {
				t.Errorf("rank %d joined as %d of %d in %q", r, c.Rank(), c.Size(), c.KVSName())
			}
			if err := c.Put("k"+itoa(r), "v"+itoa(r)); err != nil {
				t.Error(err)
			}
			if err := c.Barrier(); err != nil {
				t.Error(err)
			}
			if v, err := c.Get("k" + itoa((r+1)%n)); err != nil || v != "v"+itoa((r+1)%n) {
				t.Errorf("rank %d read %q, %v", r, v, err)
			}
			if err := c.Finalize(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for range n {
		if end := <-ends; end.Kind != EndFinalized {
			t.Errorf("a connection ended %v", end.Kind)
		}
	}
}

func TestPortTokenIsRequiredWithAKey(t *testing.T) {
	key := []byte("0123456789abcdef")
	s, _ := NewServer(ServerConfig{Size: 2, KVSName: "kvs", Key: key})
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"cmd=initack pmiid=1\n", false},
		{"cmd=initack pmiid=1 token=" + PortToken([]byte("another key....."), 1) + "\n", false},
		{"cmd=initack pmiid=1 token=" + PortToken(key, 0) + "\n", false},
		{"cmd=initack pmiid=1 token=" + PortToken(key, 1) + "\n", true},
	} {
		a, b := net.Pipe()
		go func() { b.Write([]byte(tc.line)); io.Copy(io.Discard, b) }()
		_, _, err := s.acceptInitack(a)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.line, err)
		}
		a.Close()
		b.Close()
	}
}

func TestPortRejectsBadInitack(t *testing.T) {
	s, _ := NewServer(ServerConfig{Size: 2, KVSName: "kvs"})
	a, b := net.Pipe()
	defer b.Close()
	go b.Write([]byte("cmd=initack pmiid=7\n"))
	if _, _, err := s.acceptInitack(a); err == nil {
		t.Fatal("a pmiid outside the job was accepted")
	}
}

func itoa(i int) string { return string(rune('0' + i)) }
