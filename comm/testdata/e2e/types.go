package main

import (
	"errors"
	"fmt"

	"github.com/gorun-hpc/gorun/comm"
	"github.com/gorun-hpc/gorun/internal/view"
)

// particle is a 40-byte struct with explicit padding (the blank field).
type particle struct {
	X, Y, Z, M float64
	ID         int32
	_          [4]byte
}

// cell has implicit padding (after A and C) and nests an array of particles.
type cell struct {
	A int8
	P [2]particle
	C int16
	D [3]float32
}

// typeCounts cross the eager and rendezvous sizes of every transport (1<<20/40 particles
// are a MiB, 65537/40 over 64 KiB).
var typeCounts = []int{0, 1, 7, 100, 16385/40 + 1, 65537/40 + 1, 1<<20/40 + 3}

// types moves structs with padding, their padding bytes filled with the pattern through a
// byte view, by Send/Recv, Bcast, Gather, Scatter, Allgather and Alltoall, and checks every
// byte; then every call with an element type that holds pointers fails with ErrType on
// every rank, and the world still works.
func types(c *comm.Comm) {
	for i, count := range typeCounts {
		moveStructs[particle](c, count, 10*i)
		moveStructs[cell](c, count/2, 10*i+5)
	}
	refuseTypes(c)
	moveStructs[particle](c, 3, 99)
}

func fillStructs[T any](count, seed int) []T {
	s := make([]T, count)
	fill(view.Bytes(s), seed)
	return s
}

func moveStructs[T any](c *comm.Comm, count, seed int) {
	me, n := c.Rank(), c.Size()
	to, from := (me+1)%n, (me-1+n)%n
	what := func(call string) string { return fmt.Sprintf("%s of %d %T", call, count, *new(T)) }

	got := make([]T, count)
	s, err := comm.Isend(c, fillStructs[T](count, seed+me), to, 1)
	check(err, what("Isend"))
	st, err := comm.Recv(c, got, from, 1)
	check(err, what("Recv"))
	if st.Count != count || st.Source != from {
		fail("%s: status %+v, want %d from %d", what("Recv"), st, count, from)
	}
	verify(view.Bytes(got), seed+from, what("Recv"))
	_, err = s.Wait()
	check(err, what("Isend"))

	if len(view.Bytes(got)) > 256<<10 {
		return // a MiB per block is for point to point only: collectives of it are slow under -race
	}
	root := seed % n
	buf := make([]T, count)
	if me == root {
		buf = fillStructs[T](count, seed+1)
	}
	check(comm.Bcast(c, buf, root), what("Bcast"))
	verify(view.Bytes(buf), seed+1, what("Bcast"))

	all := make([]T, n*count)
	check(comm.Gather(c, fillStructs[T](count, seed+2+me), all, root), what("Gather"))
	if me == root {
		for i := range n {
			verify(view.Bytes(all[i*count:(i+1)*count]), seed+2+i, what("Gather"))
		}
	}
	check(comm.Allgather(c, fillStructs[T](count, seed+3+me), all), what("Allgather"))
	for i := range n {
		verify(view.Bytes(all[i*count:(i+1)*count]), seed+3+i, what("Allgather"))
	}
	// Scatter and Alltoall: block j of rank i is the message of seed + 4 + i*n + j.
	blocks := make([]T, 0, n*count)
	for j := range n {
		blocks = append(blocks, fillStructs[T](count, seed+4+me*n+j)...)
	}
	mine := make([]T, count)
	check(comm.Scatter(c, blocks, mine, root), what("Scatter"))
	verify(view.Bytes(mine), seed+4+root*n+me, what("Scatter"))
	check(comm.Alltoall(c, blocks, all), what("Alltoall"))
	for i := range n {
		verify(view.Bytes(all[i*count:(i+1)*count]), seed+4+i*n+me, what("Alltoall"))
	}
}

// withPointer is refused: a pointer deep inside a struct.
type withPointer struct {
	A float64
	B [2]struct{ Next *withPointer }
}

// refuseTypes: every data-movement call with a type that holds addresses is an ErrType error
// on every rank, at once (the collectives too: with GORUN_CHECK=1 after the ranks agree).
func refuseTypes(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	one, all := make([]withPointer, 1), make([]withPointer, n)
	strs := make([]string, n)
	calls := map[string]error{
		"Send":      comm.Send(c, one, (me+1)%n, 0),
		"Ssend":     comm.Ssend(c, one, (me+1)%n, 0),
		"Recv":      errOf(comm.Recv(c, one, comm.AnySource, comm.AnyTag)),
		"Isend":     errOf(comm.Isend(c, one, (me+1)%n, 0)),
		"Issend":    errOf(comm.Issend(c, one, (me+1)%n, 0)),
		"Irecv":     errOf(comm.Irecv(c, one, comm.AnySource, comm.AnyTag)),
		"Sendrecv":  errOf(comm.Sendrecv(c, one, (me+1)%n, 0, one, comm.AnySource, 0)),
		"Bcast":     comm.Bcast(c, strs[:1], 0),
		"Gather":    comm.Gather(c, one, all, 0),
		"Scatter":   comm.Scatter(c, strs, strs[:1], n-1),
		"Allgather": comm.Allgather(c, one, all),
		"Alltoall":  comm.Alltoall(c, all, make([]withPointer, n)),
	}
	for call, err := range calls {
		var te *comm.TypeError
		if !errors.Is(err, comm.ErrType) || !errors.As(err, &te) {
			fail("%s of a type with pointers: %v, want ErrType", call, err)
		}
	}
	check(c.Barrier(), "barrier after refused calls")
	if ok, st, err := comm.Iprobe(c, comm.AnySource, comm.AnyTag); ok || err != nil {
		fail("after refused calls a message is waiting: %+v %v", st, err)
	}
	check(c.Barrier(), "barrier")
}

func errOf[T any](_ T, err error) error { return err }

// procNull: ranks in a line (ProcNull past both ends) shift particles right with Sendrecv,
// with Isend/Irecv and left with Ssend/Recv, at every size; the ends' receives from ProcNull
// complete at once with {ProcNull, AnyTag, 0} and leave the buffer alone; probes too.
func procNull(c *comm.Comm) {
	me, n := c.Rank(), c.Size()
	left, right := me-1, me+1
	if left < 0 {
		left = comm.ProcNull
	}
	if right >= n {
		right = comm.ProcNull
	}
	null := comm.Status{Source: comm.ProcNull, Tag: comm.AnyTag}
	expect := func(what string, in []particle, from, seed int, st comm.Status, err error) {
		check(err, what)
		if from == comm.ProcNull {
			if st != null {
				fail("%s from ProcNull: %+v, want %+v", what, st, null)
			}
			verify(view.Bytes(in), 7, what+" from ProcNull (buffer untouched)")
			return
		}
		if st.Source != from || st.Count != len(in) {
			fail("%s: %+v, want %d from %d", what, st, len(in), from)
		}
		verify(view.Bytes(in), seed+from, what)
	}
	for i, count := range typeCounts {
		seed := 100 * i
		what := func(call string) string { return fmt.Sprintf("%s of %d particles", call, count) }
		in := fillStructs[particle](count, 7)
		st, err := comm.Sendrecv(c, fillStructs[particle](count, seed+me), right, 1, in, left, 1)
		expect(what("Sendrecv"), in, left, seed, st, err)

		in = fillStructs[particle](count, 7)
		r, err := comm.Irecv(c, in, left, 2)
		check(err, what("Irecv"))
		s, err := comm.Isend(c, fillStructs[particle](count, seed+1+me), right, 2)
		check(err, what("Isend"))
		st, err = r.Wait()
		expect(what("Irecv"), in, left, seed+1, st, err)
		_, err = s.Wait()
		check(err, what("Isend"))

		in = fillStructs[particle](count, 7)
		st, err = comm.Recv(c, in, right, 3)
		expect(what("Recv leftwards"), in, right, seed+2, st, err)
		check(comm.Ssend(c, fillStructs[particle](count, seed+2+me), left, 3), what("Ssend"))
	}
	if st, err := comm.Probe(c, comm.ProcNull, comm.AnyTag); st != null || err != nil {
		fail("Probe from ProcNull: %+v %v", st, err)
	}
	if ok, st, err := comm.Iprobe(c, comm.ProcNull, 4); !ok || st != null || err != nil {
		fail("Iprobe from ProcNull: %v %+v %v", ok, st, err)
	}
	if err := comm.Send(c, []byte{1}, comm.ProcNull, -1); !errors.Is(err, comm.ErrTag) {
		fail("send to ProcNull with tag -1: %v, want ErrTag", err)
	}
	check(c.Barrier(), "barrier")
	if ok, st, err := comm.Iprobe(c, comm.AnySource, comm.AnyTag); ok || err != nil {
		fail("after the shifts a message is waiting: %+v %v", st, err)
	}
}
