// Package accept runs a listener's accept loop the way net/http's Server does: a failure
// that passes (out of descriptors, out of buffer memory, a connection reset before it was
// accepted) is waited out with a backoff instead of ending the loop for good.
//
//	go accept.Loop(ln, func(nc net.Conn) { go serve(nc) })
//	…
//	ln.Close() // Loop returns nil
package accept

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// The backoff after a temporary error: the first wait, doubled after each further error in
// a row up to the last; a successful Accept starts again from the first.
const (
	firstDelay = 5 * time.Millisecond
	maxDelay   = time.Second
)

// Loop accepts connections on ln and calls handle with each until ln is closed; it then
// returns nil. handle runs on Loop's goroutine and owns the connection: it hands anything
// that takes time to a goroutine of its own. While handle runs nothing is accepted, so a
// handle that blocks until a slot is free bounds the connections being opened (the others
// wait in the kernel's backlog).
//
// After a temporary error (EMFILE, ENFILE, ECONNABORTED, ENOBUFS, ENOMEM) Loop sleeps, 5 ms doubling to 1 s, and tries again. Any other error ends Loop and is
// returned.
func Loop(ln net.Listener, handle func(net.Conn)) error {
	return loop(ln, handle, time.Sleep)
}

// loop is Loop with the sleep replaceable, so that tests need not wait.
func loop(ln net.Listener, handle func(net.Conn), sleep func(time.Duration)) error {
	delay := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err == nil {
			delay = 0
			handle(nc)
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if !Temporary(err) {
			return err
		}
		delay = min(max(2*delay, firstDelay), maxDelay)
		sleep(delay)
	}
}

// Temporary reports whether an Accept error passes by itself: the process or the system is
// out of descriptors or memory for now, or the connection went away before it was
// accepted. (A deadline's timeout is not one: whoever set the deadline wants Loop back.)
func Temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
