package pmi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// authJob is a Server with Auth serving a listener, as rank 0 serves gorun's rendezvous.
// Its ServePort goroutine is owned by the test: stop closes the listener and waits.
type authJob struct {
	srv  *Server
	ln   net.Listener
	ends chan portEnd // one per accepted connection
	wg   sync.WaitGroup
}

type portEnd struct {
	rank int
	end  End
	err  error
}

func newAuthJob(t *testing.T, network string, size int, a *Auth, tweak func(*Server)) *authJob {
	t.Helper()
	srv, err := NewServer(ServerConfig{Size: size, KVSName: "kvs_auth", Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(srv)
	}
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = "@gorun-test-auth-" + hex.EncodeToString(randomBytes()[:8])
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	j := &authJob{srv: srv, ln: ln, ends: make(chan portEnd, 256)}
	j.wg.Go(func() {
		srv.ServePort(ctx, ln, func(rank int, end End, err error) { j.ends <- portEnd{rank, end, err} })
	})
	t.Cleanup(func() {
		ln.Close()
		cancel()
		j.wg.Wait()
	})
	return j
}

func (j *authJob) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(j.ln.Addr().Network(), j.ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nextEnd waits for the next connection's end.
func (j *authJob) nextEnd(t *testing.T) portEnd {
	t.Helper()
	select {
	case e := <-j.ends:
		return e
	case <-time.After(15 * time.Second):
		t.Fatal("no connection ended")
		return portEnd{}
	}
}

// joinAll has every rank of the job join with a, exchange a value and finalize; it returns
// the keys they got.
func joinAll(t *testing.T, j *authJob, size int, a Auth) [][]byte {
	t.Helper()
	keys := make([][]byte, size)
	var wg sync.WaitGroup
	for r := range size {
		conn := j.dial(t)
		wg.Go(func() {
			c, key, err := JoinAuth(conn, r, a)
			if err != nil {
				t.Errorf("rank %d: %v", r, err)
				return
			}
			keys[r] = key
			if err := exchangeAndFinalize(c, r, size); err != nil {
				t.Errorf("rank %d: %v", r, err)
			}
		})
	}
	wg.Wait()
	for range size {
		if e := j.nextEnd(t); e.rank < 0 || e.end.Kind != EndFinalized || e.err != nil {
			t.Errorf("a rank's connection ended %+v", e)
		}
	}
	return keys
}

func exchangeAndFinalize(c *Client, r, size int) error {
	if err := c.Put(fmt.Sprint("k", r), fmt.Sprint("v", r)); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	next := (r + 1) % size
	if v, err := c.Get(fmt.Sprint("k", next)); err != nil || v != fmt.Sprint("v", next) {
		return fmt.Errorf("read %q, %v", v, err)
	}
	return c.Finalize()
}

func testSecret() []byte { return []byte("0123456789abcdef0123456789abcdef") }

func TestAuthJoinUnixSameUser(t *testing.T) {
	a := Auth{Job: "job-1"}
	j := newAuthJob(t, "unix", 3, &a, nil)
	keys := joinAll(t, j, 3, a)
	for r, k := range keys {
		if len(k) != authNonceLen || !bytes.Equal(k, keys[0]) || !bytes.Equal(k, j.srv.auth.key) {
			t.Errorf("rank %d got key %x, want the server's %x", r, k, j.srv.auth.key)
		}
	}
}

func TestAuthJoinWithSecret(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			a := Auth{Secret: testSecret(), Job: "job-2"}
			j := newAuthJob(t, network, 3, &a, nil)
			keys := joinAll(t, j, 3, a)
			want := a.derivedKey(j.srv.auth.jobNonce)
			for r, k := range keys {
				if !bytes.Equal(k, want) || bytes.Contains(k, a.Secret) {
					t.Errorf("rank %d got key %x, want the derived %x", r, k, want)
				}
			}
		})
	}
}

// Two servers of one job with one secret hand out different keys: the job nonce differs.
func TestAuthKeyIsPerServer(t *testing.T) {
	a := Auth{Secret: testSecret(), Job: "job"}
	s1, _ := NewServer(ServerConfig{Size: 1, KVSName: "k", Auth: &a})
	s2, _ := NewServer(ServerConfig{Size: 1, KVSName: "k", Auth: &a})
	if bytes.Equal(a.derivedKey(s1.auth.jobNonce), a.derivedKey(s2.auth.jobNonce)) {
		t.Error("two servers derived the same job key")
	}
}

// A rank with the wrong secret, or of another job, is refused; so is a connection that
// skips the challenge. None claims a rank: the real rank still joins.
func TestAuthRefusesStrangers(t *testing.T) {
	a := Auth{Secret: testSecret(), Job: "job-3"}
	for _, tc := range []struct {
		name string
		a    Auth
	}{
		{"wrong secret", Auth{Secret: []byte("another secret of 32 bytes......"), Job: a.Job}},
		{"other job", Auth{Secret: a.Secret, Job: "job-4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newAuthJob(t, "tcp", 1, &a, nil)
			_, key, err := JoinAuth(j.dial(t), 0, tc.a)
			if err == nil || key != nil {
				t.Fatalf("JoinAuth with %s: key %x, %v", tc.name, key, err)
			}
			if e := j.nextEnd(t); e.rank != -1 || e.end.Kind != EndClosed || !errors.Is(e.err, ErrUnauthenticated) {
				t.Errorf("the stranger's connection ended %+v, want rank -1, unauthenticated", e)
			}
			joinAll(t, j, 1, a)
		})
	}
}

// A stranger that speaks PMI without authenticating cannot read the key-value space, put,
// finalize or abort: its connection is closed and never claims a rank.
func TestAuthStrangerCannotReadPutOrAbort(t *testing.T) {
	a := Auth{Secret: testSecret(), Job: "job-5"}
	proofless := "cmd=initack pmiid=0 proof=" + strings.Repeat("00", 32) + "\n"
	for _, script := range []string{
		"cmd=initack pmiid=0\ncmd=init pmi_version=1 pmi_subversion=1\ncmd=get kvsname=kvs_auth key=k0\n",
		"cmd=abort exitcode=3\n",
		"cmd=put kvsname=kvs_auth key=k0 value=forged\ncmd=barrier_in\n",
		"cmd=finalize\n",
		"cmd=auth nonce=" + strings.Repeat("ab", 32) + "\n" + proofless + "cmd=abort exitcode=3\n",
		"cmd=auth nonce=" + strings.Repeat("ab", 32) + "\ncmd=initack pmiid=0 token=" + PortToken(a.Secret, 0) + "\n",
	} {
		j := newAuthJob(t, "tcp", 2, &a, nil)
		c := j.dial(t)
		c.Write([]byte(script))
		e := j.nextEnd(t)
		if e.rank != -1 || e.end.Kind != EndClosed || e.err == nil {
			t.Errorf("%q: ended %+v, want rank -1, closed, an error", script, e)
		}
		got := readAll(c)
		if strings.Contains(got, "get_result") || strings.Contains(got, "put_result") ||
			strings.Contains(got, "finalize_ack") || strings.Contains(got, "cmd=initack") {
			t.Errorf("%q: the stranger got %q", script, got)
		}
		joinAll(t, j, 2, a) // "forged" was never put: exchangeAndFinalize reads v0
	}
}

// readAll reads what c receives until the server closes it (or 10 s pass).
func readAll(c net.Conn) string {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	b.ReadFrom(c)
	return b.String()
}

// A client whose server does not prove it holds the secret refuses it, whatever it says.
func TestAuthClientRefusesImpostorServer(t *testing.T) {
	a := Auth{Secret: testSecret(), Job: "job-6"}
	rankEnd, serverEnd := socketPair(t)
	go func() {
		rd := bufio.NewReader(serverEnd)
		rd.ReadString('\n')
		serverEnd.Write([]byte("cmd=auth_challenge nonce=" + strings.Repeat("11", 32) + " job=" + strings.Repeat("22", 32) + "\n"))
		rd.ReadString('\n')
		serverEnd.Write([]byte("cmd=initack proof=" + strings.Repeat("33", 32) + "\ncmd=set size=1\ncmd=set rank=0\ncmd=set debug=0\n"))
	}()
	if _, key, err := JoinAuth(rankEnd, 0, a); !errors.Is(err, ErrUnauthenticated) || key != nil {
		t.Errorf("JoinAuth against an impostor: key %x, %v; want ErrUnauthenticated", key, err)
	}
}

// A rank's own proof is of no use to a stranger on another connection: the nonces differ.
func TestAuthProofDoesNotReplay(t *testing.T) {
	a := Auth{Secret: testSecret(), Job: "job-7"}
	j := newAuthJob(t, "tcp", 2, &a, nil)
	// Record a real rank's exchange, then replay its initack on a new connection.
	c := j.dial(t)
	rd := bufio.NewReader(c)
	rn := strings.Repeat("cd", 32)
	fmt.Fprintf(c, "cmd=auth nonce=%s\n", rn)
	line, _ := rd.ReadString('\n')
	ch, err := ParseLine([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := hexField(ch, "nonce", authNonceLen)
	jn, _ := hexField(ch, "job", authNonceLen)
	rnb, _ := hex.DecodeString(rn)
	initack := "cmd=initack pmiid=1 proof=" + hex.EncodeToString(a.proof("gorun-rdv-rank", jn, rnb, sn, 1)) + "\n"
	c2 := j.dial(t)
	fmt.Fprintf(c2, "cmd=auth nonce=%s\n%s", rn, initack)
	if e := j.nextEnd(t); e.rank != -1 || !errors.Is(e.err, ErrUnauthenticated) {
		t.Errorf("the replayed proof: %+v, want refused", e)
	}
	c.Write([]byte(initack)) // on its own connection it is good
	if got, _ := rd.ReadString('\n'); !strings.HasPrefix(got, "cmd=initack proof=") {
		t.Errorf("the real rank's initack was answered %q", got)
	}
}

// Over a Unix socket a peer of another uid is hung up on before anything is read. (The
// test runs as one user: the server is told to expect another.)
func TestAuthRefusesOtherUID(t *testing.T) {
	for _, a := range []Auth{{Job: "j"}, {Secret: testSecret(), Job: "j"}} {
		j := newAuthJob(t, "unix", 1, &a, func(s *Server) { s.uid = os.Getuid() + 1 })
		c := j.dial(t)
		_, key, err := JoinAuth(c, 0, a)
		if err == nil || key != nil {
			t.Fatalf("a peer of another uid joined: key %x", key)
		}
		if e := j.nextEnd(t); e.rank != -1 || !errors.Is(e.err, ErrUnauthenticated) || !strings.Contains(e.err.Error(), "uid") {
			t.Errorf("ended %+v, want refused for its uid", e)
		}
	}
}

func TestCheckPeerUID(t *testing.T) {
	a, b := socketPair(t)
	if err := CheckPeerUID(a, os.Getuid()); err != nil {
		t.Errorf("own uid: %v", err)
	}
	if err := CheckPeerUID(b, os.Getuid()+1); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("another uid: %v, want ErrUnauthenticated", err)
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if err := CheckPeerUID(p, os.Getuid()); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Errorf("not a socket: %v, want an error that says so", err)
	}
}

// Without a secret only Unix-socket peers are served: a TCP peer has nothing to prove.
func TestAuthWithoutSecretRefusesTCP(t *testing.T) {
	a := Auth{Job: "j"}
	j := newAuthJob(t, "tcp", 1, &a, nil)
	j.dial(t).Write([]byte("cmd=auth\n"))
	if e := j.nextEnd(t); e.rank != -1 || !errors.Is(e.err, ErrUnauthenticated) {
		t.Errorf("ended %+v, want refused", e)
	}
	if _, _, err := JoinAuth(j.dial(t), 0, a); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a client without a secret joined over TCP: %v", err)
	}
}

func TestNewServerRefusesShortSecret(t *testing.T) {
	if _, err := NewServer(ServerConfig{Size: 1, KVSName: "k", Auth: &Auth{Secret: []byte("short")}}); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
}

// An opening that says nothing is closed after openTimeout; while maxOpening of them are
// pending, the next connection waits in the backlog, and is served once a slot is free.
func TestServePortBoundsOpenings(t *testing.T) {
	a := Auth{Secret: testSecret(), Job: "j"}
	j := newAuthJob(t, "tcp", 1, &a, func(s *Server) { s.openTimeout = 10 * time.Second })
	idle := make([]net.Conn, maxOpening)
	for i := range idle {
		idle[i] = j.dial(t)
	}
	next := j.dial(t)
	fmt.Fprintf(next, "cmd=auth nonce=%s\n", strings.Repeat("ef", 32))
	rd := bufio.NewReader(next)
	next.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if line, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("connection %d was answered (%q) while %d openings were pending", maxOpening+1, line, maxOpening)
	}
	idle[0].Close() // its opening fails: a slot is free
	next.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "cmd=auth_challenge") {
		t.Fatalf("after a slot freed: %q, %v", line, err)
	}
}

func TestServePortTimesOutOpenings(t *testing.T) {
	a := Auth{Secret: testSecret(), Job: "j"}
	j := newAuthJob(t, "tcp", 1, &a, func(s *Server) { s.openTimeout = 100 * time.Millisecond })
	c := j.dial(t)
	if e := j.nextEnd(t); e.rank != -1 || e.err == nil {
		t.Errorf("a silent connection ended %+v", e)
	}
	if got := readAll(c); got != "" {
		t.Errorf("a silent connection got %q", got)
	}
}

func TestAuthMACIsUnambiguous(t *testing.T) {
	k := testSecret()
	if bytes.Equal(authMAC(k, "l", "ab", "c"), authMAC(k, "l", "a", "bc")) {
		t.Error("fields are not delimited")
	}
}
