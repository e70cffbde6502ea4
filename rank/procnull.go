package rank

// ProcNull is the rank that is nobody (MPI_PROC_NULL): a send to it and a receive from it
// complete at once, moving nothing. It is negative, like AnySource, and distinct from it (Open
// MPI's choice: AnySource -1, ProcNull -2). The runtime never sees it on its message path:
// calls naming it are answered by NullRequest (or at once, for blocking calls) before anything
// is posted or sent.
const ProcNull = -2

// NullRequest returns a request that has already completed without error, as a send to
// ProcNull (recv false) or a receive from it (recv true) does. A receive's status is
// {Source: ProcNull, Tag: AnyTag, Bytes: 0}. Nothing is posted, so Cancel reports false; the
// request may be waited, tested and given to WaitAny like any other of w.
func (w *World) NullRequest(recv bool) *Request {
	r := newRequest(w)
	r.op = opSend
	if recv {
		r.op = opRecv
		r.peer, r.tag = ProcNull, AnyTag
		r.status = Status{Source: ProcNull, Tag: AnyTag}
	}
	r.done.Store(1) // r is not yet shared: the store publishes nothing, it only marks r done
	return r
}
