package sock

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The handshake opens every connection and proves that both ends hold the job's secret key,
// so that no process outside the job can inject a message. It is a mutual challenge-response
// with HMAC-SHA256; the key itself never crosses the wire.
//
//	initiator → acceptor   hello:  magic "gorunHS1" | from u32 | to u32 | nonceI [32]
//	acceptor  → initiator  answer: nonceA [32] | HMAC(key, "accept"   | hello | nonceA)
//	initiator → acceptor   proof:  HMAC(key, "initiate" | hello | nonceA)
//
// Each side checks the other's MAC before it trusts the connection; the acceptor also checks
// that `to` is itself and that `from` is a rank it expects a connection from. Binding both
// nonces and both ranks into each MAC stops replay and reflection. A failed handshake closes
// the connection; nothing it carried reaches the matching engine.

const (
	handshakeMagic = "gorunHS1"
	nonceLen       = 32
	macLen         = sha256.Size
	helloLen       = len(handshakeMagic) + 4 + 4 + nonceLen
	// handshakeTimeout bounds how long a silent or slow peer can hold a handshake open.
	handshakeTimeout = 10 * time.Second
)

// ErrAuth is the root of every handshake failure.
var ErrAuth = errors.New("handshake failed")

func authErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAuth, fmt.Sprintf(format, args...))
}

func mac(key []byte, label string, hello, nonceA []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(hello)
	m.Write(nonceA)
	return m.Sum(nil)
}

// initiate runs the initiator's side on a fresh connection from rank `from` to rank `to`.
func initiate(c net.Conn, key []byte, from, to int) error {
	if err := c.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return err
	}
	hello := make([]byte, helloLen)
	copy(hello, handshakeMagic)
	binary.LittleEndian.PutUint32(hello[8:], uint32(from))
	binary.LittleEndian.PutUint32(hello[12:], uint32(to))
	if _, err := rand.Read(hello[16:]); err != nil {
		return err
	}
	if _, err := c.Write(hello); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	answer := make([]byte, nonceLen+macLen)
	if _, err := io.ReadFull(c, answer); err != nil {
		return authErr("rank %d did not answer: %v", to, err)
	}
	nonceA := answer[:nonceLen]
	if !hmac.Equal(answer[nonceLen:], mac(key, "accept", hello, nonceA)) {
		return authErr("rank %d does not hold the job key", to)
	}
	if _, err := c.Write(mac(key, "initiate", hello, nonceA)); err != nil {
		return fmt.Errorf("send proof: %w", err)
	}
	return c.SetDeadline(time.Time{})
}

// acceptHandshake runs the acceptor's side for rank self and returns the initiator's rank. expected
// reports whether a connection from that rank is welcome.
func acceptHandshake(c net.Conn, key []byte, self int, expected func(int) bool) (int, error) {
	if err := c.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return 0, err
	}
	hello := make([]byte, helloLen)
	if _, err := io.ReadFull(c, hello); err != nil {
		return 0, authErr("no hello: %v", err)
	}
	if string(hello[:8]) != handshakeMagic {
		return 0, authErr("not a gorun peer")
	}
	from := int(binary.LittleEndian.Uint32(hello[8:]))
	to := int(binary.LittleEndian.Uint32(hello[12:]))
	if to != self {
		return 0, authErr("hello addressed to rank %d, this is rank %d", to, self)
	}
	if !expected(from) {
		return 0, authErr("unexpected connection claiming rank %d", from)
	}
	answer := make([]byte, nonceLen, nonceLen+macLen)
	if _, err := rand.Read(answer); err != nil {
		return 0, err
	}
	answer = append(answer, mac(key, "accept", hello, answer[:nonceLen])...)
	if _, err := c.Write(answer); err != nil {
		return 0, fmt.Errorf("answer rank %d: %w", from, err)
	}
	proof := make([]byte, macLen)
	if _, err := io.ReadFull(c, proof); err != nil {
		return 0, authErr("no proof from claimed rank %d: %v", from, err)
	}
	if !hmac.Equal(proof, mac(key, "initiate", hello, answer[:nonceLen])) {
		return 0, authErr("connection claiming rank %d does not hold the job key", from)
	}
	return from, c.SetDeadline(time.Time{})
}
