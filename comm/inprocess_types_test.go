package comm_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/jobtest"
	"github.com/gorun-hpc/gorun/internal/memtransport"
	"github.com/gorun-hpc/gorun/internal/view"
	"github.com/gorun-hpc/gorun/rank"
)

// Element types beyond the numeric kinds (DESIGN, second tier): structs with padding, arrays,
// nested structs move as their bytes, padding included, through every data-movement call; a
// type that holds an address is ErrType on every call, before anything moves.

// particle has explicit padding (the blank field) and is 40 bytes.
type particle struct {
	X, Y, Z, M float64
	ID         int32
	_          [4]byte
}

// padded has implicit padding after A, C and E.
type padded struct {
	A int8
	B float64
	C int16
	D int32
	E bool
}

// nested holds structs and arrays of them, and arrays of arrays.
type nested struct {
	P padded
	V [3]particle
	T [5]uint8
	M [2][2]complex64
}

type celsius float64

// TestElementSizes: the sizes the tests below rely on (a 40-byte particle, padding in both).
func TestElementSizes(t *testing.T) {
	if p, q := unsafe.Sizeof(particle{}), unsafe.Sizeof(padded{}); p != 40 || q != 32 {
		t.Fatalf("particle is %d bytes, padded %d: the tests assume 40 and 32", p, q)
	}
}

// TestInProcessStructTypes moves structs with padding, nested structs, arrays and named
// numeric types through every data-movement call, at every size and rank count, and compares
// every byte (padding bytes carry the pattern too, written through a byte view).
func TestInProcessStructTypes(t *testing.T) {
	forEachJob(t, func(c *comm.Comm) error {
		for _, count := range []int{0, 1, 5, memtransport.DefaultEagerLimit/40 + 3} {
			for _, f := range []func(*comm.Comm, int, int) error{
				moveTyped[particle], moveTyped[padded], moveTyped[nested],
				moveTyped[[3]int16], moveTyped[[2][3]particle], moveTyped[celsius], moveTyped[struct{}],
			} {
				if err := f(c, count, count%97); err != nil {
					return err
				}
			}
		}
		return structCounts(c)
	})
}

// fillTyped returns count elements of T whose bytes, padding included, are the message of seed.
func fillTyped[T any](count, seed int) []T {
	s := make([]T, count)
	pattern(view.Bytes(s), seed)
	return s
}

// sameTyped compares got with the message of seed byte for byte.
func sameTyped[T any](got []T, seed int, what string) error {
	return samePattern(view.Bytes(got), seed, fmt.Sprintf("%s of %T", what, got))
}

// moveTyped runs every data-movement call with count elements of T per block.
func moveTyped[T any](c *comm.Comm, count, seed int) error {
	me, n := c.Rank(), c.Size()
	to, from := (me+1)%n, (me-1+n)%n
	seedOf := func(r, k int) int { return (seed*31+r*7+k)%patternSeeds + 1 }
	size := int(unsafe.Sizeof(*new(T)))
	wantCount := count
	if size == 0 {
		wantCount = 0 // a message of zero-size elements is empty: it counts none
	}
	ring := func(what string, st comm.Status, err error, got []T, k int) error {
		if err != nil {
			return fmt.Errorf("%s of %d %T: %w", what, count, got, err)
		}
		if st.Source != from || st.Count != wantCount {
			return rankErrorf("%s of %d %T: status %+v, want %d from %d", what, count, got, st, wantCount, from)
		}
		return sameTyped(got, seedOf(from, k), what)
	}

	// Blocking, synchronous and nonblocking sends around the ring.
	s, err := comm.Isend(c, fillTyped[T](count, seedOf(me, 0)), to, 1)
	if err != nil {
		return err
	}
	got := make([]T, count)
	st, err := comm.Recv(c, got, from, 1)
	if err := ring("Isend/Recv", st, err, got, 0); err != nil {
		return err
	}
	r, err := comm.Irecv(c, got, from, 2)
	if err != nil {
		return err
	}
	ss, err := comm.Issend(c, fillTyped[T](count, seedOf(me, 1)), to, 2)
	if err != nil {
		return err
	}
	st, err = r.Wait()
	if err := ring("Issend/Irecv", st, err, got, 1); err != nil {
		return err
	}
	if err := comm.WaitAll(s, ss); err != nil {
		return err
	}
	if n > 1 { // blocking Send and Ssend around the ring: odd ranks receive first
		for k, send := range []func([]T, int, int) error{
			func(b []T, dst, tag int) error { return comm.Send(c, b, dst, tag) },
			func(b []T, dst, tag int) error { return comm.Ssend(c, b, dst, tag) },
		} {
			out := fillTyped[T](count, seedOf(me, 2+k))
			if me%2 == 0 {
				if err := send(out, to, 3+k); err != nil {
					return err
				}
			}
			st, err := comm.Recv(c, got, from, 3+k)
			if err := ring("Send/Ssend", st, err, got, 2+k); err != nil {
				return err
			}
			if me%2 == 1 {
				if err := send(out, to, 3+k); err != nil {
					return err
				}
			}
		}
	}
	st, err = comm.Sendrecv(c, fillTyped[T](count, seedOf(me, 4)), to, 5, got, from, 5)
	if err := ring("Sendrecv", st, err, got, 4); err != nil {
		return err
	}

	// Collectives: root 0 and the last rank.
	for _, root := range []int{0, n - 1} {
		buf := make([]T, count)
		if me == root {
			buf = fillTyped[T](count, seedOf(root, 5))
		}
		if err := comm.Bcast(c, buf, root); err != nil {
			return fmt.Errorf("Bcast of %T: %w", buf, err)
		}
		if err := sameTyped(buf, seedOf(root, 5), "Bcast"); err != nil {
			return err
		}
		all := make([]T, n*count)
		if err := comm.Gather(c, fillTyped[T](count, seedOf(me, 6)), all, root); err != nil {
			return fmt.Errorf("Gather of %T: %w", all, err)
		}
		if me == root {
			for i := range n {
				if err := sameTyped(all[i*count:(i+1)*count], seedOf(i, 6), "Gather"); err != nil {
					return err
				}
			}
		}
		var send []T
		if me == root {
			send = make([]T, 0, n*count)
			for i := range n {
				send = append(send, fillTyped[T](count, seedOf(i, 7))...)
			}
		}
		mine := make([]T, count)
		if err := comm.Scatter(c, send, mine, root); err != nil {
			return fmt.Errorf("Scatter of %T: %w", mine, err)
		}
		if err := sameTyped(mine, seedOf(me, 7), "Scatter"); err != nil {
			return err
		}
	}
	all := make([]T, n*count)
	if err := comm.Allgather(c, fillTyped[T](count, seedOf(me, 8)), all); err != nil {
		return fmt.Errorf("Allgather of %T: %w", all, err)
	}
	for i := range n {
		if err := sameTyped(all[i*count:(i+1)*count], seedOf(i, 8), "Allgather"); err != nil {
			return err
		}
	}
	// Alltoall: block j from rank i is the message of seed (i, 9+j).
	send := make([]T, 0, n*count)
	for j := range n {
		send = append(send, fillTyped[T](count, seedOf(me, 9+j))...)
	}
	if err := comm.Alltoall(c, send, all); err != nil {
		return fmt.Errorf("Alltoall of %T: %w", all, err)
	}
	for i := range n {
		if err := sameTyped(all[i*count:(i+1)*count], seedOf(i, 9+me), "Alltoall"); err != nil {
			return err
		}
	}
	return nil
}

// structCounts: Recv counts in 40-byte elements; a size that is not a whole number of them is
// ErrCount (with the whole elements counted), a larger message a *TruncateError.
func structCounts(c *comm.Comm) error {
	me, n := c.Rank(), c.Size()
	to, from := (me+1)%n, (me-1+n)%n
	var reqs []*comm.Request
	for tag, b := range [][]byte{make([]byte, 80), make([]byte, 3*40+8), make([]byte, 5*40), make([]byte, 39)} {
		s, err := comm.Isend(c, b, to, 20+tag)
		if err != nil {
			return err
		}
		reqs = append(reqs, s)
	}
	buf := make([]particle, 4)
	for _, tc := range []struct {
		tag, count int
		want       error
	}{{20, 2, nil}, {21, 3, comm.ErrCount}, {22, 4, comm.ErrTruncate}, {23, 0, comm.ErrCount}} {
		st, err := comm.Recv(c, buf, from, tc.tag)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) || st.Count != tc.count {
			return rankErrorf("tag %d into []particle: Count %d, %v; want %d, %v", tc.tag, st.Count, err, tc.count, tc.want)
		}
	}
	var te *comm.TruncateError
	s, _ := comm.Isend(c, make([]particle, 5), to, 30)
	reqs = append(reqs, s)
	if _, err := comm.Recv(c, buf, from, 30); !errors.As(err, &te) || te.Size != 200 || te.Cap != 160 {
		return rankErrorf("5 particles into 4: %v, want a TruncateError of 200 into 160 bytes", err)
	}
	// A buffer of a zero-size type holds no bytes: any other message overflows it.
	s, _ = comm.Isend(c, []byte{1}, to, 31)
	reqs = append(reqs, s)
	if st, err := comm.Recv(c, make([]struct{}, 3), from, 31); !errors.Is(err, comm.ErrTruncate) || st.Count != 0 {
		return rankErrorf("1 byte into []struct{}: Count %d, %v, want ErrTruncate", st.Count, err)
	}
	return comm.WaitAll(reqs...)
}

// deep holds a pointer three levels down, in an array.
type deep struct {
	A int64
	B struct {
		C [2]struct {
			X float64
			D *int
		}
	}
}

// badType is one element type that must be refused, and where its *TypeError must point.
type badType struct {
	name, kind, path string
	calls            func(c *comm.Comm) map[string]error
}

var badTypes = []badType{
	{"pointer", "pointer", "*int", badCalls[*int]},
	{"string", "string", "string", badCalls[string]},
	{"slice", "slice", "[]float64", badCalls[[]float64]},
	{"map", "map", "map[int]int", badCalls[map[int]int]},
	{"interface", "interface", "interface {}", badCalls[any]},
	{"error", "interface", "error", badCalls[error]},
	{"chan", "chan", "chan int", badCalls[chan int]},
	{"func", "func", "func()", badCalls[func()]},
	{"uintptr", "uintptr", "uintptr", badCalls[uintptr]},
	{"unsafe.Pointer", "pointer", "unsafe.Pointer", badCalls[unsafe.Pointer]},
	{"deep struct", "pointer", "comm_test.deep.B.C[0].D", badCalls[deep]},
	{"array of strings", "string", "[4]string[0]", badCalls[[4]string]},
	{"array of deep structs", "pointer", "[2]comm_test.deep[0].B.C[0].D", badCalls[[2]deep]},
	{"struct with a slice", "slice", "struct { X float64; S []int }.S", badCalls[struct {
		X float64
		S []int
	}]},
}

// badCalls makes every data-movement call with elements of T, buffers sized right.
func badCalls[T any](c *comm.Comm) map[string]error {
	me, n := c.Rank(), c.Size()
	one, all := make([]T, 1), make([]T, n)
	return map[string]error{
		"Send":               comm.Send(c, one, me, 0),
		"Ssend":              comm.Ssend(c, one, me, 0),
		"Recv":               errOf(comm.Recv(c, one, comm.AnySource, comm.AnyTag)),
		"Isend":              errOf(comm.Isend(c, one, me, 0)),
		"Issend":             errOf(comm.Issend(c, one, me, 0)),
		"Irecv":              errOf(comm.Irecv(c, one, comm.AnySource, comm.AnyTag)),
		"Sendrecv":           errOf(comm.Sendrecv(c, one, me, 0, one, me, 0)),
		"Bcast":              comm.Bcast(c, one, 0),
		"Gather":             comm.Gather(c, one, all, 0),
		"Scatter":            comm.Scatter(c, all, one, 0),
		"Allgather":          comm.Allgather(c, one, all),
		"Alltoall":           comm.Alltoall(c, all, make([]T, n)),
		"Send to ProcNull":   comm.Send(c, one, comm.ProcNull, 0),
		"Recv from ProcNull": errOf(comm.Recv(c, one, comm.ProcNull, 0)),
	}
}

// TestInProcessTypeErrors: every data-movement call refuses every kind of element type that
// holds an address, with a *TypeError naming the part, on every rank and before anything is
// sent (nothing arrives anywhere); the communicator works afterwards.
func TestInProcessTypeErrors(t *testing.T) {
	forJobs(t, jobShapes[:2], inProcRanks, func(c *comm.Comm) error {
		for _, bt := range badTypes {
			for call, err := range bt.calls(c) {
				var te *comm.TypeError
				if !errors.Is(err, comm.ErrType) || !errors.As(err, &te) {
					return rankErrorf("%s with %s elements: %v, want ErrType", call, bt.name, err)
				}
				if te.Kind != bt.kind || te.Path != bt.path || !strings.Contains(err.Error(), te.Type) {
					return rankErrorf("%s with %s elements: %+v (%v), want kind %q at %q", call, bt.name, te, err, bt.kind, bt.path)
				}
			}
		}
		if err := c.Barrier(); err != nil {
			return err
		}
		if ok, st, err := comm.Iprobe(c, comm.AnySource, comm.AnyTag); ok || err != nil {
			return rankErrorf("after refused calls a message is waiting: %+v %v", st, err)
		}
		if err := c.Barrier(); err != nil { // every rank has looked
			return err
		}
		return moveTyped[particle](c, 3, 1) // still usable, collectives included
	})
}

// TestTypeErrorMessage: the message names the type, the part and the kind.
func TestTypeErrorMessage(t *testing.T) {
	err := comm.Send(nil, []deep{}, 0, 0)
	if want := "element type comm_test.deep holds a pointer at comm_test.deep.B.C[0].D"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %q…", err, want)
	}
	err = comm.Send(nil, []any{}, 0, 0)
	if want := "element type interface {} is an interface"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %q…", err, want)
	}
}

// TestTypeCheckDoesNotAllocate: the check of an element type, after its first use, is a map
// load: a send of structs to ProcNull (which checks everything and sends nothing) allocates
// nothing, and neither does a refusal already seen.
func TestTypeCheckDoesNotAllocate(t *testing.T) {
	if jobtest.Race {
		t.Skip("the race detector's instrumentation allocates")
	}
	net, err := memtransport.New(1, memtransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := comm.InProcess(net, nil, rank.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cs[0].Close()
	ps, bad := make([]nested, 4), make([]deep, 1)
	comm.Send(cs[0], bad, comm.ProcNull, 0)
	if n := testing.AllocsPerRun(1000, func() {
		if err := comm.Send(cs[0], ps, comm.ProcNull, 0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a send of structs to ProcNull: %.2f allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() { comm.Send(cs[0], bad, comm.ProcNull, 0) }); n != 0 {
		t.Errorf("a refused send: %.2f allocations", n)
	}
	if !bytes.Equal(view.Bytes(ps), make([]byte, len(ps)*int(unsafe.Sizeof(nested{})))) {
		t.Error("a send changed its buffer")
	}
}
