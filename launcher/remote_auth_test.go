package launcher

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/jobtest/harness"
	"github.com/gorun-hpc/gorun/internal/pmi"
)

// watchJob is a job of three ranks, 1 and 2 on another host, whose remote service serves
// the watch port; stop closes it and waits for its goroutines.
func watchJob(t *testing.T, lineLimit time.Duration) (*remoteService, []byte) {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	j := &job{key: hex.EncodeToString(key), cfg: Config{PMIAddr: "127.0.0.1"},
		slots: []slot{{host: "a"}, {host: "b", remote: true}, {host: "b", remote: true}}}
	t.Setenv("GORUN_IFACE", "")
	rs, err := newRemoteService(j)
	if err != nil {
		t.Fatal(err)
	}
	rs.lineLimit = lineLimit
	j.wg.Go(rs.acceptWatches)
	t.Cleanup(func() {
		rs.closeWatches()
		rs.pmiLn.Close()
		j.wg.Wait()
	})
	return rs, key
}

func dialWatch(t *testing.T, rs *remoteService, line string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", rs.watchAddr("b"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if line != "" {
		c.Write([]byte(line))
	}
	return c
}

// closedByServer reports whether gorun closed c (within 10 s).
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// stillOpen reports whether c is still open after a short wait.
func stillOpen(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	return isTimeout(err)
}

func (rs *remoteService) state() (watches, pending int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.watches), len(rs.pending)
}

// waitState waits until the watch port holds watches authenticated connections and
// pending unauthenticated ones.
func waitState(t *testing.T, rs *remoteService, watches, pending int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w, p := rs.state()
		if w == watches && p == pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watches and %d pending, want %d and %d", w, p, watches, pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func watchLineOf(key []byte, r int) string {
	return fmt.Sprintf("%d %s\n", r, pmi.WatchToken(key, r))
}

// A remote rank's watch connection is kept until the job ends; a stranger's is closed
// and forgotten, whatever it sends.
func TestWatchAuthenticates(t *testing.T) {
	harness.CheckLeaks(t)
	rs, key := watchJob(t, 10*time.Second)
	other := bytes.Repeat([]byte{8}, 32)
	for _, tc := range []struct{ name, line string }{
		{"no token", "1\n"},
		{"wrong key", watchLineOf(other, 1)},
		{"another rank's token", fmt.Sprintf("1 %s\n", pmi.WatchToken(key, 2))},
		{"a local rank", watchLineOf(key, 0)},
		{"out of range", watchLineOf(key, 3)},
		{"negative", fmt.Sprintf("-1 %s\n", pmi.WatchToken(key, -1))},
		{"PMI token", fmt.Sprintf("1 %s\n", pmi.PortToken(key, 1))},
		{"endless line", strings.Repeat("1", 1<<16)},
		{"garbage", "\x00\xff\n"},
	} {
		c := dialWatch(t, rs, tc.line)
		if !closedByServer(c) {
			t.Errorf("%s: the connection was kept", tc.name)
		}
	}
	waitState(t, rs, 0, 0)
	good := dialWatch(t, rs, watchLineOf(key, 1))
	waitState(t, rs, 1, 0)
	replay := dialWatch(t, rs, watchLineOf(key, 1))
	if !closedByServer(replay) {
		t.Error("a second watch connection for rank 1 was kept")
	}
	if !stillOpen(good) {
		t.Fatal("rank 1's watch connection was closed before the job ended")
	}
	rs.closeWatches()
	if !closedByServer(good) {
		t.Error("rank 1's watch connection outlived the job")
	}
}

// Connections that say nothing are closed after the line limit; while maxOpening of them
// wait, a rank's connection waits in the backlog, and is kept once a slot frees.
func TestWatchBoundsPending(t *testing.T) {
	harness.CheckLeaks(t)
	rs, key := watchJob(t, 10*time.Second)
	silent := make([]net.Conn, maxOpening)
	for i := range silent {
		silent[i] = dialWatch(t, rs, "")
	}
	waitState(t, rs, 0, maxOpening)
	good := dialWatch(t, rs, watchLineOf(key, 2))
	time.Sleep(100 * time.Millisecond)
	if w, p := rs.state(); w != 0 || p != maxOpening {
		t.Fatalf("%d watches, %d pending while the slots were full", w, p)
	}
	silent[0].Close()
	waitState(t, rs, 1, maxOpening-1)
	if !stillOpen(good) {
		t.Error("rank 2's watch connection was closed")
	}
}

func TestWatchSilentConnectionTimesOut(t *testing.T) {
	harness.CheckLeaks(t)
	rs, _ := watchJob(t, 100*time.Millisecond)
	c := dialWatch(t, rs, "")
	if !closedByServer(c) {
		t.Error("a silent watch connection was kept")
	}
	waitState(t, rs, 0, 0)
}

// FuzzWatchLine: parseWatchLine never panics, and accepts only a remote rank with its
// token.
func FuzzWatchLine(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, s := range []string{watchLineOf(key, 1), watchLineOf(key, 0), "1\n", "1 \n", " 1 x\n", "999999999999 x\n", "-0 x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, ok := parseWatchLine(line, key, func(r int) bool { return r == 1 || r == 2 })
		if !ok {
			return
		}
		if r != 1 && r != 2 || !bytes.HasSuffix(line, []byte(" "+pmi.WatchToken(key, r)+"\n")) {
			t.Fatalf("accepted %q as rank %d", line, r)
		}
	})
}
