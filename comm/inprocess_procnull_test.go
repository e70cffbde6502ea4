package comm_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/gorun-hpc/gorun/comm"
)

// ProcNull, the rank that is nobody (DESIGN, second tier; MPI_PROC_NULL): every call that
// names a peer takes it, completes at once and moves nothing.

var nullStatus = comm.Status{Source: comm.ProcNull, Tag: comm.AnyTag, Count: 0}

func TestProcNullIsNoRank(t *testing.T) {
	if comm.ProcNull >= 0 || comm.ProcNull == comm.AnySource {
		t.Fatalf("ProcNull = %d: want a negative value other than AnySource (%d)", comm.ProcNull, comm.AnySource)
	}
}

func TestInProcessProcNull(t *testing.T) {
	forJobs(t, jobShapes[:2], inProcRanks, inSequence(
		namedStep{"every call", procNullCalls},
		namedStep{"checks still apply", procNullChecks},
		namedStep{"line with edges", func(c *comm.Comm) error { return procNullLine(c, 1000) }},
		namedStep{"on a sub-communicator", func(c *comm.Comm) error {
			return onCommunicators(c, procNullCalls)
		}},
	))
}

// procNullCalls: sends to ProcNull complete at once; receives and probes from it complete at
// once with nullStatus and leave the buffer as it was. Nothing arrives anywhere afterwards.
func procNullCalls(c *comm.Comm) error {
	buf := []particle{{X: 1, ID: 7}, {Y: 2, ID: 8}}
	orig := slices.Clone(buf)
	for what, err := range map[string]error{
		"Send":   comm.Send(c, buf, comm.ProcNull, 1),
		"Ssend":  comm.Ssend(c, buf, comm.ProcNull, 1),
		"Send 0": comm.Send(c, []byte(nil), comm.ProcNull, 0),
	} {
		if err != nil {
			return rankErrorf("%s to ProcNull: %v", what, err)
		}
	}
	wantNull := func(what string, st comm.Status, err error) error {
		if err != nil || st != nullStatus {
			return rankErrorf("%s from ProcNull: %+v %v, want %+v", what, st, err, nullStatus)
		}
		if !slices.Equal(buf, orig) {
			return rankErrorf("%s from ProcNull changed the buffer: %v", what, buf)
		}
		return nil
	}
	for _, tag := range []int{comm.AnyTag, 0, 5} {
		st, err := comm.Recv(c, buf, comm.ProcNull, tag)
		if err := wantNull("Recv", st, err); err != nil {
			return err
		}
		st, err = comm.Probe(c, comm.ProcNull, tag)
		if err := wantNull("Probe", st, err); err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // ProcNull needs no time at all
		st, err = comm.ProbeContext(ctx, c, comm.ProcNull, tag)
		if err := wantNull("ProbeContext", st, err); err != nil {
			return err
		}
		ok, st, err := comm.Iprobe(c, comm.ProcNull, tag)
		if !ok {
			return rankErrorf("Iprobe from ProcNull: not ready")
		}
		if err := wantNull("Iprobe", st, err); err != nil {
			return err
		}
		st, err = comm.Sendrecv(c, buf, comm.ProcNull, 3, buf, comm.ProcNull, tag)
		if err := wantNull("Sendrecv to and", st, err); err != nil {
			return err
		}
	}

	// Requests: completed at once; Wait, Test, WaitAny, TestAll, WaitAll see them so.
	s, err := comm.Isend(c, buf, comm.ProcNull, 2)
	if err != nil {
		return err
	}
	ss, err := comm.Issend(c, buf, comm.ProcNull, 2)
	if err != nil {
		return err
	}
	r, err := comm.Irecv(c, buf, comm.ProcNull, comm.AnyTag)
	if err != nil {
		return err
	}
	if done, err := comm.TestAll(s, ss, r); !done || err != nil {
		return rankErrorf("TestAll of requests to and from ProcNull: %v %v", done, err)
	}
	if done, st, err := r.Test(); !done {
		return rankErrorf("Irecv from ProcNull: not done")
	} else if err := wantNull("Irecv, Test", st, err); err != nil {
		return err
	}
	st, err := r.Wait()
	if err := wantNull("Irecv, Wait", st, err); err != nil {
		return err
	}
	if st, err := s.Wait(); err != nil || st != (comm.Status{}) {
		return rankErrorf("Isend to ProcNull: %+v %v", st, err)
	}
	if r.Cancel() {
		return rankErrorf("a completed receive from ProcNull was canceled")
	}
	// WaitAny picks a ProcNull receive among a pending one.
	pending, err := comm.Irecv(c, make([]byte, 1), comm.AnySource, 99)
	if err != nil {
		return err
	}
	r2, _ := comm.Irecv(c, buf, comm.ProcNull, 4)
	i, st, err := comm.WaitAny(pending, r2)
	if i != 1 {
		return rankErrorf("WaitAny: %d, want the ProcNull receive (1)", i)
	}
	if err := wantNull("Irecv, WaitAny", st, err); err != nil {
		return err
	}
	if !pending.Cancel() {
		return rankErrorf("could not cancel the pending receive")
	}
	if err := comm.WaitAll(s, ss, r, r2); err != nil {
		return err
	}

	// Nothing was sent anywhere.
	if err := c.Barrier(); err != nil {
		return err
	}
	if ok, st, err := comm.Iprobe(c, comm.AnySource, comm.AnyTag); ok || err != nil {
		return rankErrorf("after calls with ProcNull a message is waiting: %+v %v", st, err)
	}
	return c.Barrier()
}

// procNullChecks: a call naming ProcNull still has its tag, type and communicator checked.
func procNullChecks(c *comm.Comm) error {
	d, err := c.Dup()
	if err != nil {
		return err
	}
	d.Close()
	one := []int32{1}
	for _, tc := range []struct {
		what string
		err  error
		want error
	}{
		{"send with a negative tag", comm.Send(c, one, comm.ProcNull, -5), comm.ErrTag},
		{"send with AnyTag", comm.Send(c, one, comm.ProcNull, comm.AnyTag), comm.ErrTag},
		{"ssend with a tag past MaxTag", comm.Ssend(c, one, comm.ProcNull, comm.MaxTag+1), comm.ErrTag},
		{"isend with a negative tag", errOf(comm.Isend(c, one, comm.ProcNull, -2)), comm.ErrTag},
		{"issend with a negative tag", errOf(comm.Issend(c, one, comm.ProcNull, -2)), comm.ErrTag},
		{"recv with tag -7", errOf(comm.Recv(c, one, comm.ProcNull, -7)), comm.ErrTag},
		{"irecv with tag -7", errOf(comm.Irecv(c, one, comm.ProcNull, -7)), comm.ErrTag},
		{"probe with tag -7", errOf(comm.Probe(c, comm.ProcNull, -7)), comm.ErrTag},
		{"iprobe with tag -7", iprobeErr(comm.Iprobe(c, comm.ProcNull, -7)), comm.ErrTag},
		{"sendrecv with a negative send tag", errOf(comm.Sendrecv(c, one, comm.ProcNull, -1, one, comm.ProcNull, 0)), comm.ErrTag},
		{"sendrecv with a bad receive tag", errOf(comm.Sendrecv(c, one, comm.ProcNull, 0, one, comm.ProcNull, -3)), comm.ErrTag},
		{"send of strings", comm.Send(c, []string{"x"}, comm.ProcNull, 0), comm.ErrType},
		{"irecv of pointers", errOf(comm.Irecv(c, []*int{nil}, comm.ProcNull, 0)), comm.ErrType},
		{"send on a closed communicator", comm.Send(d, one, comm.ProcNull, 0), comm.ErrClosed},
		{"recv on a closed communicator", errOf(comm.Recv(d, one, comm.ProcNull, 0)), comm.ErrClosed},
		{"probe on a closed communicator", errOf(comm.Probe(d, comm.ProcNull, 0)), comm.ErrClosed},
		{"send to ProcNull-1", comm.Send(c, one, comm.ProcNull-1, 0), comm.ErrRank},
		{"bcast from root ProcNull", comm.Bcast(c, one, comm.ProcNull), comm.ErrRank},
	} {
		if !errors.Is(tc.err, tc.want) {
			return rankErrorf("%s: %v, want %v", tc.what, tc.err, tc.want)
		}
	}
	return c.Barrier()
}

func iprobeErr(_ bool, _ comm.Status, err error) error { return err }

// procNullLine: ranks in a line (not a ring) shift data right with Sendrecv and with
// Isend/Irecv, and left with blocking Send/Recv: the ends name ProcNull instead of a
// neighbour and need no special case.
func procNullLine(c *comm.Comm, count int) error {
	me, n := c.Rank(), c.Size()
	left, right := me-1, me+1
	if left < 0 {
		left = comm.ProcNull
	}
	if right >= n {
		right = comm.ProcNull
	}
	out := make([]int64, count)
	for i := range out {
		out[i] = int64(me*count + i)
	}
	check := func(what string, in []int64, from int, st comm.Status, err error) error {
		if err != nil {
			return rankErrorf("%s: %v", what, err)
		}
		if from == comm.ProcNull {
			if st != nullStatus || in[0] != -1 {
				return rankErrorf("%s from ProcNull: %+v, buffer %d", what, st, in[0])
			}
			return nil
		}
		if st.Source != from || st.Count != count || in[0] != int64(from*count) || in[count-1] != int64(from*count+count-1) {
			return rankErrorf("%s from %d: %+v, %d…%d", what, from, st, in[0], in[count-1])
		}
		return nil
	}
	in := slices.Repeat([]int64{-1}, count)
	st, err := comm.Sendrecv(c, out, right, 7, in, left, 7)
	if err := check("Sendrecv right", in, left, st, err); err != nil {
		return err
	}
	in = slices.Repeat([]int64{-1}, count)
	r, err := comm.Irecv(c, in, left, 8)
	if err != nil {
		return err
	}
	s, err := comm.Isend(c, out, right, 8)
	if err != nil {
		return err
	}
	st, err = r.Wait()
	if err := check("Irecv right", in, left, st, err); err != nil {
		return err
	}
	if _, err := s.Wait(); err != nil {
		return err
	}
	// Leftwards, blocking, in order: the right end starts (its receive is from ProcNull).
	in = slices.Repeat([]int64{-1}, count)
	st, err = comm.Recv(c, in, right, 9)
	if err := check("Recv left", in, right, st, err); err != nil {
		return err
	}
	if err := comm.Ssend(c, out, left, 9); err != nil {
		return err
	}
	// And Sendrecv with one side a rank, the other ProcNull (only the ends).
	if me == 0 && n > 1 {
		_, err = comm.Sendrecv(c, out, 1, 10, in, comm.ProcNull, 10)
	} else if me == 1 {
		st, err = comm.Sendrecv(c, out, comm.ProcNull, 10, in, 0, 10)
		err = check("Sendrecv from the end", in, 0, st, err)
	}
	return err
}
