package pmi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testJob is a Server with one ServeConn goroutine per rank, each over a
// real socketpair. The test owns the goroutines: wait stops and joins them.
type testJob struct {
	t      *testing.T
	srv    *Server
	ranks  []net.Conn // the rank ends
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ends   []End
	errs   []error
}

func newTestJob(t *testing.T, size int, tweaks ...func(*ServerConfig)) *testJob {
	t.Helper()
	cfg := ServerConfig{Size: size, KVSName: "kvs_test"}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	j := &testJob{t: t, srv: srv, cancel: cancel, ends: make([]End, size), errs: make([]error, size)}
	for r := 0; r < size; r++ {
		rankEnd, serverEnd := socketPair(t)
		j.ranks = append(j.ranks, rankEnd)
		j.wg.Add(1)
		go func() {
			defer j.wg.Done()
			j.ends[r], j.errs[r] = srv.ServeConn(ctx, r, serverEnd)
		}()
	}
	t.Cleanup(j.wait)
	return j
}

// wait cancels the job and joins every ServeConn goroutine.
func (j *testJob) wait() {
	j.cancel()
	j.wg.Wait()
}

// finish waits for every ServeConn to return by itself (no cancel).
func (j *testJob) finish() {
	done := make(chan struct{})
	go func() { j.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		j.t.Fatal("ServeConn did not return")
	}
}

func TestServerExchange(t *testing.T) {
	for _, size := range []int{1, 2, 3, 4, 8} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			j := newTestJob(t, size)
			errs := make(chan error, size)
			for r := 0; r < size; r++ {
				go func() { errs <- exchangeCards(j.ranks[r], r, size) }()
			}
			for range size {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			j.finish()
			for r := range size {
				if j.ends[r].Kind != EndFinalized || j.errs[r] != nil {
					t.Errorf("rank %d ended %v, %v; want finalized", r, j.ends[r], j.errs[r])
				}
			}
		})
	}
}

// exchangeCards is what a rank's bootstrap does: put a card, barrier, get
// every card, twice (the KVS persists across barriers), then finalize.
func exchangeCards(conn net.Conn, rank, size int) error {
	c, err := NewClient(conn, rank, size)
	if err != nil {
		return err
	}
	if m, err := c.Get("PMI_process_mapping"); err != nil || m != fmt.Sprintf("(vector,(0,1,%d))", size) {
		return fmt.Errorf("rank %d: mapping %q, %v", rank, m, err)
	}
	for round := 0; round < 2; round++ {
		key := fmt.Sprintf("card-%d-%d", round, rank)
		if err := c.Put(key, fmt.Sprintf("addr=127.0.0.1:%d", 1000+rank)); err != nil {
			return err
		}
		if _, err := c.Get(key); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("rank %d: own put visible before the barrier (%v)", rank, err)
		}
		if err := c.Barrier(); err != nil {
			return err
		}
		for p := 0; p < size; p++ {
			for r := 0; r <= round; r++ {
				v, err := c.Get(fmt.Sprintf("card-%d-%d", r, p))
				if want := fmt.Sprintf("addr=127.0.0.1:%d", 1000+p); err != nil || v != want {
					return fmt.Errorf("rank %d: card %d/%d = %q, %v; want %q", rank, r, p, v, err, want)
				}
			}
		}
	}
	if _, err := c.Get("nobody-put-this"); !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("rank %d: missing key: %v", rank, err)
	}
	return c.Finalize()
}

// rawConn speaks raw lines to the server, for requests a Client never sends.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func (r rawConn) roundTrip(line string) string {
	r.t.Helper()
	if _, err := r.c.Write([]byte(line)); err != nil {
		r.t.Fatal(err)
	}
	reply, err := r.rd.ReadString('\n')
	if err != nil {
		r.t.Fatalf("reply to %q: %v", line, err)
	}
	return strings.TrimSuffix(reply, "\n")
}

func TestServerRefusals(t *testing.T) {
	j := newTestJob(t, 1)
	r := rawConn{t, j.ranks[0], bufio.NewReader(j.ranks[0])}
	tests := []struct{ name, req, reply string }{
		{"before init", "cmd=get_maxes\n", "cmd=get_maxes rc=-1 msg=init_first"},
		{"pmi-2 init", "cmd=init pmi_version=2 pmi_subversion=0\n",
			"cmd=response_to_init rc=-1 pmi_version=1 pmi_subversion=1 msg=only_pmi_version_1"},
		{"init", "cmd=init pmi_version=1 pmi_subversion=1\n", "cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1"},
		{"maxes", "cmd=get_maxes\n", "cmd=maxes rc=0 kvsname_max=256 keylen_max=64 vallen_max=1024"},
		{"appnum", "cmd=get_appnum\n", "cmd=appnum rc=0 appnum=0"},
		{"universe", "cmd=get_universe_size\n", "cmd=universe_size rc=0 size=1"},
		{"kvsname", "cmd=get_my_kvsname\n", "cmd=my_kvsname rc=0 kvsname=kvs_test"},
		{"unknown command", "cmd=spawn nprocs=4\n", "cmd=error rc=-1 msg=unknown_command"},
		{"malformed line", "cmd=put key=a\\b\n", "cmd=error rc=-1 msg=malformed_request"},
		{"duplicate key", "cmd=put key=a key=b\n", "cmd=error rc=-1 msg=malformed_request"},
		{"wrong kvsname", "cmd=put kvsname=other key=k value=v\n", "cmd=put_result rc=-1 msg=unknown_kvsname"},
		{"no key", "cmd=put kvsname=kvs_test value=v\n", "cmd=put_result rc=-1 msg=missing_key"},
		{"long key", "cmd=put kvsname=kvs_test key=" + strings.Repeat("k", 64) + " value=v\n",
			"cmd=put_result rc=-1 msg=key_too_long"},
		{"no value", "cmd=put kvsname=kvs_test key=k\n", "cmd=put_result rc=-1 msg=missing_value"},
		{"put", "rc=0 value=v key=k cmd=put kvsname=kvs_test\n", "cmd=put_result rc=0 msg=success"},
		{"get before barrier", "cmd=get kvsname=kvs_test key=k\n",
			"cmd=get_result rc=-1 msg=key_not_found value=unknown"},
		{"barrier", "cmd=barrier_in\n", "cmd=barrier_out rc=0"},
		{"get", "cmd=get kvsname=kvs_test key=k\n", "cmd=get_result rc=0 msg=success value=v"},
		{"finalize", "cmd=finalize\n", "cmd=finalize_ack rc=0"},
	}
	for _, tc := range tests {
		if got := r.roundTrip(tc.req); got != tc.reply {
			t.Errorf("%s: %q -> %q, want %q", tc.name, tc.req, got, tc.reply)
		}
	}
	j.finish()
	if j.ends[0].Kind != EndFinalized || j.errs[0] != nil {
		t.Fatalf("ended %v, %v", j.ends[0], j.errs[0])
	}
}

func TestServerAbort(t *testing.T) {
	j := newTestJob(t, 2)
	c, err := NewClient(j.ranks[1], 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Abort(7, "out of cheese"); err != nil {
		t.Fatal(err)
	}
	j.ranks[0].Close() // rank 0 exits without a word
	j.finish()
	if want := (End{Kind: EndAborted, ExitCode: 7, Message: "out_of_cheese"}); j.ends[1] != want || j.errs[1] != nil {
		t.Errorf("rank 1 ended %+v, %v; want %+v", j.ends[1], j.errs[1], want)
	}
	if j.ends[0].Kind != EndClosed || j.errs[0] != nil {
		t.Errorf("rank 0 ended %+v, %v; want closed, no error", j.ends[0], j.errs[0])
	}
}

// A rank that leaves while others wait in a barrier fails that barrier
// instead of hanging it.
func TestServerBarrierFailsWhenRankLeaves(t *testing.T) {
	j := newTestJob(t, 3)
	errs := make(chan error, 2)
	for r := 0; r < 2; r++ {
		go func() {
			c, err := NewClient(j.ranks[r], r, 3)
			if err == nil {
				err = c.Barrier()
			}
			errs <- err
		}()
	}
	c, err := NewClient(j.ranks[2], 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finalize(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var re *ReplyError
		if err := <-errs; !errors.As(err, &re) || re.Cmd != "barrier_in" {
			t.Errorf("Barrier = %v, want a barrier_in ReplyError", err)
		}
	}
}

// An abort is reported to Aborted before the barrier it leaves fails: the launcher learns of
// the abort before any rank can exit because of it (TestRemoteRankAborts failed 1 run in 25
// under load when the barrier's failure came first).
func TestServerAbortedBeforeBarrierFails(t *testing.T) {
	release := make(chan struct{})
	var got []string // what happened, in order; under mu
	var mu sync.Mutex
	note := func(s string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}
	j := newTestJob(t, 2, func(c *ServerConfig) {
		c.Aborted = func(rank int, end End) {
			note(fmt.Sprintf("aborted %d %d", rank, end.ExitCode))
			<-release
		}
	})
	errs := make(chan error, 1)
	go func() {
		c, err := NewClient(j.ranks[1], 1, 2)
		if err == nil {
			err = c.Barrier()
		}
		note("barrier failed")
		errs <- err
	}()
	c, err := NewClient(j.ranks[0], 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Abort(9, "gives up"); err != nil {
		t.Fatal(err)
	}
	// While Aborted has not returned, the barrier must not fail.
	select {
	case err := <-errs:
		t.Fatalf("the barrier ended (%v) while Aborted was still running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-errs; err == nil {
		t.Fatal("the barrier succeeded after rank 0 aborted")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"aborted 0 9", "barrier failed"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestServerProtocolErrors(t *testing.T) {
	j := newTestJob(t, 2)
	// Rank 0 sends a line that never ends: the stream is out of step.
	if _, err := j.ranks[0].Write([]byte("cmd=put value=" + strings.Repeat("x", 2*MaxLine))); err != nil {
		t.Fatal(err)
	}
	// Rank 1 is served twice: the second is refused at once. (The first
	// is running once it answers.)
	if _, err := NewClient(j.ranks[1], 1, 2); err != nil {
		t.Fatal(err)
	}
	a, b := socketPair(t)
	defer a.Close()
	if _, err := j.srv.ServeConn(context.Background(), 1, b); err == nil {
		t.Error("second ServeConn for rank 1 succeeded")
	}
	if _, err := j.srv.ServeConn(context.Background(), 2, b); err == nil {
		t.Error("ServeConn for rank 2 of 2 succeeded")
	}
	j.ranks[1].Close()
	j.finish()
	if !errors.Is(j.errs[0], ErrMalformed) || j.ends[0].Kind != EndClosed {
		t.Errorf("rank 0 ended %+v, %v; want closed with ErrMalformed", j.ends[0], j.errs[0])
	}
}

func TestServerCancelUnblocksBarrier(t *testing.T) {
	j := newTestJob(t, 2)
	rd := bufio.NewReader(j.ranks[1])
	j.ranks[1].Write([]byte("cmd=init pmi_version=1 pmi_subversion=1\ncmd=barrier_in\n"))
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "cmd=response_to_init rc=0") {
		t.Fatalf("init: %q, %v", line, err)
	}
	// Rank 0 is connected but never enters: the barrier waits until cancel.
	time.Sleep(20 * time.Millisecond)
	j.wait()
	if j.ends[1].Kind != EndClosed || !errors.Is(j.errs[1], context.Canceled) {
		t.Errorf("rank 1 ended %+v, %v; want closed with context.Canceled", j.ends[1], j.errs[1])
	}
	if line, err := rd.ReadString('\n'); err == nil {
		t.Errorf("rank 1 got %q after cancel, want the connection closed", line)
	}
}

func TestNewServerValidates(t *testing.T) {
	for _, cfg := range []ServerConfig{
		{Size: 0, KVSName: "k"},
		{Size: 1, KVSName: ""},
		{Size: 1, KVSName: "has space"},
		{Size: 1, KVSName: strings.Repeat("k", 256)},
		{Size: 1, KVSName: "k", ProcessMapping: "a b"},
	} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("NewServer(%+v) succeeded", cfg)
		}
	}
	if _, err := NewServer(ServerConfig{Size: 2, KVSName: "k", ProcessMapping: "(vector,(0,2,1))"}); err != nil {
		t.Error(err)
	}
}
