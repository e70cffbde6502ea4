package accept

import (
	"errors"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// fakeListener returns, one per Accept, the errors or connections of script, then
// net.ErrClosed.
type fakeListener struct {
	script []any // error or net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	if len(l.script) == 0 {
		return nil, net.ErrClosed
	}
	next := l.script[0]
	l.script = l.script[1:]
	if err, ok := next.(error); ok {
		return nil, err
	}
	return next.(net.Conn), nil
}

func (l *fakeListener) Close() error   { return nil }
func (l *fakeListener) Addr() net.Addr { return &net.UnixAddr{Name: "fake", Net: "unix"} }

// acceptErr is what net.Listener.Accept returns for errno e.
func acceptErr(e syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", e)}
}

func TestLoopSurvivesTemporaryErrors(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ln := &fakeListener{script: []any{
		acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), acceptErr(syscall.ENOBUFS),
		acceptErr(syscall.ENOMEM), acceptErr(syscall.ECONNABORTED), a,
		acceptErr(syscall.EMFILE), b,
	}}
	var slept []time.Duration
	var got []net.Conn
	err := loop(ln, func(nc net.Conn) { got = append(got, nc) }, func(d time.Duration) { slept = append(slept, d) })
	if err != nil {
		t.Fatalf("Loop returned %v after the listener closed, want nil", err)
	}
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("handled %v, want both connections in order", got)
	}
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
		40 * time.Millisecond, 80 * time.Millisecond, 5 * time.Millisecond}
	if !slices.Equal(slept, want) {
		t.Errorf("slept %v, want %v (doubling, reset by a success)", slept, want)
	}
}

func TestLoopBackoffIsCapped(t *testing.T) {
	var script []any
	for range 20 {
		script = append(script, acceptErr(syscall.EMFILE))
	}
	var last time.Duration
	loop(&fakeListener{script: script}, func(net.Conn) {}, func(d time.Duration) { last = d })
	if last != time.Second {
		t.Errorf("after 20 errors in a row the wait is %v, want 1s", last)
	}
}

func TestLoopReturnsOtherErrors(t *testing.T) {
	bad := acceptErr(syscall.EINVAL)
	err := loop(&fakeListener{script: []any{bad}}, func(net.Conn) {}, func(time.Duration) {
		t.Error("slept after a permanent error")
	})
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Loop returned %v, want the EINVAL", err)
	}
}

// A real listener: Loop returns nil once it is closed, and serves what arrives before.
func TestLoopRealListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- Loop(ln, func(nc net.Conn) { nc.Close(); handled <- struct{}{} }) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not handled")
	}
	ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Loop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Loop did not return after Close")
	}
}
