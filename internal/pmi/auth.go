package pmi

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Auth says how gorun's own rendezvous (rank/launch.go: rank 0 serves the job's key-value
// space under Open MPI's mpirun and plain srun) authenticates. Its port is one that
// strangers can reach too: an abstract Unix socket any local user may connect to or squat,
// or a TCP port. Both ends hold the same Auth: the server in ServerConfig.Auth, each rank in
// JoinAuth.
//
// Over a Unix socket each side first checks the other's SO_PEERCRED uid (CheckPeerUID):
// another user's process is hung up on before a byte is read or written. With a Secret,
// the rank and the server then prove to each other that they hold it, and the rank claims
// its rank inside that exchange:
//
//	rank → server   cmd=auth nonce=<Nr>
//	server → rank   cmd=auth_challenge nonce=<Ns> job=<J>
//	rank → server   cmd=initack pmiid=<R> proof=<Pr>
//	server → rank   cmd=initack proof=<Ps>
//	                cmd=set size=<N>, cmd=set rank=<R>, cmd=set debug=0 (as in port.go)
//
// Nr and Ns are 32 random bytes fresh per connection, J 32 random bytes per server (per
// job), all hex. Pr = HMAC-SHA256(Secret, "gorun-rdv-rank", Job, J, Nr, Ns, R) and Ps the
// same under the label "gorun-rdv-server", every field length-prefixed (authMAC). Both
// nonces enter both proofs, so no proof is good on another connection, and the labels
// differ, so the server's proof never serves as a rank's. The server proves itself only to
// a rank that proved itself first. The job key both ends then hold, for the ranks' own
// connections, is HMAC-SHA256(Secret, "gorun-job-key", Job, J): it never crosses the wire.
//
// Without a Secret the peer's uid is the whole proof, so only Unix-socket peers are served,
// and the server hands each the job key (32 random bytes per server):
//
//	rank → server   cmd=auth
//	server → rank   cmd=auth_challenge key=<K>
//	rank → server   cmd=initack pmiid=<R>
//	server → rank   cmd=initack, then the settings
type Auth struct {
	// Secret is what ranks on other nodes prove they hold (a per-user cookie file, see
	// Cookie, or a key the user passes as GORUN_JOB_KEY); at least 16 bytes, or nil.
	Secret []byte
	// Job names the job (rank 0 and every rank compute the same): a rank of another job of
	// the same user cannot join this one.
	Job string
}

// authNonceLen is the length of every nonce and of the job key handed over a Unix socket.
const authNonceLen = 32

// serverAuth is a Server's side of Auth, fixed by NewServer.
type serverAuth struct {
	Auth
	jobNonce []byte // J, with a Secret
	key      []byte // K, without one
}

func newServerAuth(a *Auth) (*serverAuth, error) {
	if a == nil {
		return nil, nil
	}
	if a.Secret != nil && len(a.Secret) < 16 {
		return nil, errors.New("pmi: an Auth secret needs at least 16 bytes")
	}
	sa := &serverAuth{Auth: *a}
	if a.Secret != nil {
		sa.jobNonce = randomBytes()
	} else {
		sa.key = randomBytes()
	}
	return sa, nil
}

func randomBytes() []byte {
	b := make([]byte, authNonceLen)
	rand.Read(b) // never fails (crypto/rand crashes the program rather)
	return b
}

// authMAC is HMAC-SHA256 under secret of label and fields, each preceded by its length as
// 8 bytes big-endian, so that no two different lists give the same input.
func authMAC(secret []byte, label string, fields ...string) []byte {
	m := hmac.New(sha256.New, secret)
	var n [8]byte
	for _, f := range append([]string{label}, fields...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}

// authProof is Pr (label "gorun-rdv-rank") or Ps ("gorun-rdv-server").
func (a *Auth) proof(label string, jobNonce, rankNonce, serverNonce []byte, rank int) []byte {
	return authMAC(a.Secret, label, a.Job, string(jobNonce), string(rankNonce), string(serverNonce), strconv.Itoa(rank))
}

// derivedKey is the job key of a rendezvous with a Secret.
func (a *Auth) derivedKey(jobNonce []byte) []byte {
	return authMAC(a.Secret, "gorun-job-key", a.Job, string(jobNonce))
}

// hexField reads field key of m: exactly n bytes, hex.
func hexField(m Message, key string, n int) ([]byte, error) {
	v, _ := m.Get(key)
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("pmi: %s %s=%q is not %d bytes in hex", m.Cmd, key, v, n)
	}
	return b, nil
}

// challenge is one connection's state between the server's auth_challenge and the rank's
// initack.
type challenge struct {
	rankNonce, serverNonce []byte
}

// checkPeer is the server's first step with Auth: a Unix peer must be this user; without a
// Secret nothing but a Unix peer is served.
func (s *Server) checkPeer(nc net.Conn) error {
	if isUnix(nc) {
		return CheckPeerUID(nc, s.uid)
	}
	if s.auth.Secret == nil {
		return fmt.Errorf("%w: connection from %s: without a secret only this user's processes on a Unix socket are served",
			ErrUnauthenticated, addrOf(nc))
	}
	return nil
}

// sendChallenge reads the rank's cmd=auth and answers it.
func (s *Server) sendChallenge(nc net.Conn, rd *bufio.Reader) (*challenge, error) {
	r, err := readMessage(rd)
	if err != nil || r.Cmd != "auth" {
		return nil, fmt.Errorf("%w: connection from %s opened with %q (%v)", ErrUnauthenticated, addrOf(nc), r, err)
	}
	ch := &challenge{}
	reply := msg("auth_challenge", "key", hex.EncodeToString(s.auth.key))
	if s.auth.Secret != nil {
		if ch.rankNonce, err = hexField(r, "nonce", authNonceLen); err != nil {
			return nil, fmt.Errorf("%w: from %s: %v", ErrUnauthenticated, addrOf(nc), err)
		}
		ch.serverNonce = randomBytes()
		reply = msg("auth_challenge", "nonce", hex.EncodeToString(ch.serverNonce), "job", hex.EncodeToString(s.auth.jobNonce))
	}
	if _, err := writeMessage(nc, nil, reply); err != nil {
		return nil, err
	}
	return ch, nil
}

// checkProof checks the rank's proof in its initack r and returns the server's, to send back.
func (s *Server) checkProof(nc net.Conn, ch *challenge, r Message, rank int) (string, error) {
	got, err := hexField(r, "proof", sha256.Size)
	want := s.auth.proof("gorun-rdv-rank", s.auth.jobNonce, ch.rankNonce, ch.serverNonce, rank)
	if err != nil || !hmac.Equal(got, want) {
		return "", fmt.Errorf("%w: connection from %s claiming rank %d does not prove it holds the job's secret",
			ErrUnauthenticated, addrOf(nc), rank)
	}
	return hex.EncodeToString(s.auth.proof("gorun-rdv-server", s.auth.jobNonce, ch.rankNonce, ch.serverNonce, rank)), nil
}

// JoinAuth is Join for gorun's own rendezvous: it runs Auth's exchange over conn, a
// connection to a Server whose ServerConfig.Auth is a, as rank id, then the PMI-1
// handshake, and returns the client and the job key. Without a.Secret conn must be a Unix
// socket whose server runs as this user. The Client owns conn from now on; it is closed if
// JoinAuth fails.
func JoinAuth(conn net.Conn, id int, a Auth) (*Client, []byte, error) {
	c := &Client{conn: conn, rd: newLineReader(conn), buf: make([]byte, 0, MaxLine)}
	conn.SetDeadline(time.Now().Add(portTimeout))
	key, err := c.authOpen(id, a)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	conn.SetDeadline(time.Time{})
	if err := c.handshake(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return c, key, nil
}

// authOpen is the rank's side of Auth's exchange and the settings after it.
func (c *Client) authOpen(id int, a Auth) ([]byte, error) {
	if isUnix(c.conn) {
		if err := CheckPeerUID(c.conn, os.Getuid()); err != nil {
			return nil, err
		}
	} else if a.Secret == nil {
		return nil, fmt.Errorf("%w: no secret to prove over a connection to %s that is not a Unix socket", ErrUnauthenticated, addrOf(c.conn))
	}
	hello, rankNonce := msg("auth"), []byte(nil)
	if a.Secret != nil {
		rankNonce = randomBytes()
		hello = msg("auth", "nonce", hex.EncodeToString(rankNonce))
	}
	var err error
	if c.buf, err = writeMessage(c.conn, c.buf, hello); err != nil {
		return nil, fmt.Errorf("pmi: send auth: %w", err)
	}
	ch, err := readMessage(c.rd)
	if err != nil || ch.Cmd != "auth_challenge" {
		return nil, fmt.Errorf("pmi: auth answered with %q (%v)", ch, err)
	}
	var key, jobNonce, serverNonce []byte
	initack := msg("initack", "pmiid", strconv.Itoa(id))
	if a.Secret == nil {
		if key, err = hexField(ch, "key", authNonceLen); err != nil {
			return nil, err
		}
	} else {
		if serverNonce, err = hexField(ch, "nonce", authNonceLen); err != nil {
			return nil, err
		}
		if jobNonce, err = hexField(ch, "job", authNonceLen); err != nil {
			return nil, err
		}
		proof := a.proof("gorun-rdv-rank", jobNonce, rankNonce, serverNonce, id)
		initack = msg("initack", "pmiid", strconv.Itoa(id), "proof", hex.EncodeToString(proof))
	}
	if c.buf, err = writeMessage(c.conn, c.buf, initack); err != nil {
		return nil, fmt.Errorf("pmi: send initack: %w", err)
	}
	r, err := readMessage(c.rd)
	if err != nil || r.Cmd != "initack" {
		return nil, fmt.Errorf("pmi: initack answered with %q (%v)", r, err)
	}
	if a.Secret != nil {
		got, err := hexField(r, "proof", sha256.Size)
		if err != nil || !hmac.Equal(got, a.proof("gorun-rdv-server", jobNonce, rankNonce, serverNonce, id)) {
			return nil, fmt.Errorf("%w: the server at %s does not prove it holds the job's secret", ErrUnauthenticated, addrOf(c.conn))
		}
		key = a.derivedKey(jobNonce)
	}
	if err := c.readSettings(); err != nil {
		return nil, err
	}
	if c.rank != id {
		return nil, fmt.Errorf("pmi: joined as rank %d, the server says %d", id, c.rank)
	}
	return key, nil
}
