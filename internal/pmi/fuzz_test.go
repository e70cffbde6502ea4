package pmi

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

// The fuzz targets feed what a stranger (or a broken peer) could send to the server's
// request dispatcher, to the opening of ServePort (initack, Auth) and to a rank's side of
// Auth. Seeds live in testdata/fuzz/<target>/.

// feed writes input to the peer end of a net.Pipe, then makes the other end's reads time
// out, so that whatever reads it sees input and then the end of it; replies are drained
// into lines. It returns the end to read from and a function that closes both ends and
// returns the lines replied.
func feed(input []byte) (net.Conn, func() []string) {
	self, peer := net.Pipe()
	lines := make(chan []string, 1)
	go func() {
		var got []string
		rd := bufio.NewReaderSize(peer, 2*MaxLine)
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				break
			}
			got = append(got, l)
		}
		lines <- got
	}()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		peer.Write(input)
		self.SetReadDeadline(time.Now()) // the input is over
	}()
	return self, func() []string {
		self.Close()
		<-wrote
		peer.Close()
		return <-lines
	}
}

// checkLines fails unless every line the server wrote is a well-formed PMI line.
func checkLines(t *testing.T, lines []string) {
	for _, l := range lines {
		if _, err := ParseLine([]byte(l)); err != nil {
			t.Fatalf("the server wrote %q: %v", l, err)
		}
	}
}

// FuzzServeConn feeds arbitrary request lines to a rank's connection: the server must never
// panic, must return once the input ends, and writes only well-formed lines.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"cmd=init pmi_version=1 pmi_subversion=1\ncmd=get_maxes\ncmd=get_my_kvsname\n",
		"cmd=init pmi_version=1 pmi_subversion=1\ncmd=put kvsname=kvs key=k value=v\ncmd=barrier_in\ncmd=get kvsname=kvs key=k\ncmd=finalize\n",
		"cmd=abort exitcode=9 msg=bye\n",
		"cmd=get kvsname=kvs key=k\n",
		"cmd=init pmi_version=2\n\n=x\ncmd=\\\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		s, err := NewServer(ServerConfig{Size: 1, KVSName: "kvs"})
		if err != nil {
			t.Fatal(err)
		}
		conn, finish := feed(input)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		end, _ := s.ServeConn(ctx, 0, conn)
		if ctx.Err() != nil {
			t.Fatal("ServeConn did not return when the input ended")
		}
		if end.Kind != EndFinalized && end.Kind != EndAborted && end.Kind != EndClosed {
			t.Fatalf("ended %v", end.Kind)
		}
		checkLines(t, finish())
	})
}

// FuzzInitack feeds arbitrary bytes to the opening of a server with a key (gorun's remote
// ranks): it must never panic, and it accepts a rank only with the rank's token.
func FuzzInitack(f *testing.F) {
	key := []byte("0123456789abcdef")
	for _, s := range []string{
		"cmd=initack pmiid=1 token=" + PortToken(key, 1) + "\n",
		"cmd=initack pmiid=1\n",
		"cmd=initack pmiid=-1 token=x\n",
		"cmd=initack pmiid=99999999999999999999\n",
		"cmd=init pmi_version=1 pmi_subversion=1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		s, _ := NewServer(ServerConfig{Size: 2, KVSName: "kvs", Key: key})
		conn, finish := feed(input)
		rank, _, err := s.acceptInitack(conn)
		lines := finish()
		checkLines(t, lines)
		if err == nil {
			r, perr := readMessage(bufio.NewReader(bytes.NewReader(input)))
			token, _ := r.Get("token")
			if perr != nil || token != PortToken(key, rank) {
				t.Fatalf("accepted rank %d from %q", rank, input)
			}
		}
	})
}

// FuzzAuthServer feeds arbitrary bytes to the opening of a rendezvous server with a secret:
// it must never panic and never accept (a proof cannot be guessed), and it answers nothing
// but an auth_challenge.
func FuzzAuthServer(f *testing.F) {
	for _, s := range []string{
		"cmd=auth nonce=" + hexOf(0xab) + "\ncmd=initack pmiid=0 proof=" + hexOf(0xcd) + "\n",
		"cmd=auth\ncmd=initack pmiid=0\n",
		"cmd=auth nonce=zz\n",
		"cmd=initack pmiid=0 token=x\n",
		"cmd=auth nonce=" + hexOf(0xab) + " extra=1\ncmd=initack pmiid=7 proof=\n",
	} {
		f.Add([]byte(s))
	}
	a := Auth{Secret: testSecret(), Job: "fuzz"}
	f.Fuzz(func(t *testing.T, input []byte) {
		s, _ := NewServer(ServerConfig{Size: 2, KVSName: "kvs", Auth: &a})
		conn, finish := feed(input)
		rank, _, err := s.acceptInitack(conn)
		lines := finish()
		if err == nil {
			t.Fatalf("accepted rank %d from %q", rank, input)
		}
		checkLines(t, lines)
		for _, l := range lines {
			if m, _ := ParseLine([]byte(l)); m.Cmd != "auth_challenge" {
				t.Fatalf("an unauthenticated peer got %q", l)
			}
		}
	})
}

// FuzzAuthClient feeds arbitrary server bytes to a rank's side of Auth: it must never panic
// and never accept a server that did not prove it holds the secret.
func FuzzAuthClient(f *testing.F) {
	for _, s := range []string{
		"cmd=auth_challenge nonce=" + hexOf(0x11) + " job=" + hexOf(0x22) + "\ncmd=initack proof=" + hexOf(0x33) + "\ncmd=set size=1\ncmd=set rank=0\ncmd=set debug=0\n",
		"cmd=auth_challenge key=" + hexOf(0x44) + "\ncmd=initack\ncmd=set size=1\ncmd=set rank=0\ncmd=set debug=0\n",
		"cmd=auth_challenge nonce=1 job=2\n",
		"cmd=initack\n",
	} {
		f.Add([]byte(s))
	}
	a := Auth{Secret: testSecret(), Job: "fuzz"}
	f.Fuzz(func(t *testing.T, input []byte) {
		conn, finish := feed(input)
		c := &Client{conn: conn, rd: newLineReader(conn), buf: make([]byte, 0, MaxLine)}
		key, err := c.authOpen(0, a)
		lines := finish()
		if err == nil || key != nil {
			t.Fatalf("accepted a server that sent %q (key %x)", input, key)
		}
		checkLines(t, lines)
	})
}

// hexOf is 32 bytes of b, in hex.
func hexOf(b byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*authNonceLen)
	for range authNonceLen {
		out = append(out, digits[b>>4], digits[b&15])
	}
	return string(out)
}
