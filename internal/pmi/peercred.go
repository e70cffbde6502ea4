package pmi

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnauthenticated is wrapped by the errors of a connection refused because its peer did
// not prove that it belongs to the job: another user's process on a Unix socket (SO_PEERCRED),
// a missing or wrong proof of the secret (Auth), a wrong PortToken.
var ErrUnauthenticated = errors.New("pmi: peer is not authenticated")

// peerUID returns the uid of the process at the other end of a Unix socket connection, as
// the kernel recorded it when the connection was made (SO_PEERCRED: the process that
// connected, or the one that listened).
func peerUID(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok || !isUnix(nc) {
		return -1, fmt.Errorf("pmi: %T is not a Unix socket", nc)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if credErr != nil {
		return -1, fmt.Errorf("pmi: SO_PEERCRED: %w", credErr)
	}
	return int(cred.Uid), nil
}

// CheckPeerUID returns nil if nc is a Unix socket connection whose peer runs as uid, and
// otherwise an error wrapping ErrUnauthenticated (or the error that kept it from knowing).
func CheckPeerUID(nc net.Conn, uid int) error {
	got, err := peerUID(nc)
	if err != nil {
		return err
	}
	if got != uid {
		return fmt.Errorf("%w: the process at the other end of %s runs as uid %d, not %d",
			ErrUnauthenticated, addrOf(nc), got, uid)
	}
	return nil
}

// isUnix reports whether nc is a Unix socket connection.
func isUnix(nc net.Conn) bool {
	if _, ok := nc.(*net.UnixConn); ok {
		return true
	}
	a := nc.LocalAddr()
	return a != nil && a.Network() == "unix"
}

// addrOf names nc's peer for an error message (an abstract Unix peer has no name: then the
// local one).
func addrOf(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	if a := nc.LocalAddr(); a != nil {
		return a.String()
	}
	return "?"
}
