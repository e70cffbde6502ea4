package rank

import (
	"sync"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/transport"
)

// matcher is the matching engine: for each communicator context it keeps the posted receives
// (in posting order) and the unexpected messages (in arrival order), and pairs them MPI's way:
// a message matches the first posted receive whose source and tag accept it; a receive
// matches the first unexpected message it accepts. Since transports deliver each sender's
// messages in send order, and both queues are searched from the front, two messages from one
// sender that both match a receive are received in send order (MPI's non-overtaking rule),
// whatever their sizes and protocols.
//
// It implements transport.Sink and is safe for concurrent use.
type matcher struct {
	mu sync.Mutex
	// ctxs holds the queues of every context that has seen traffic.
	ctxs map[uint32]*queues
	// lost holds the peers that are gone, with why; receives from them fail at once, and so do
	// wildcard receives that nothing already queued can satisfy.
	lost map[int]error
	// anyLost is set once lost has an entry: a cheap check for waits that poll.
	anyLost atomic.Bool
	// closed, once set (World.Close), completes every receive and probe posted on a context
	// other than keepCtx at once; keepCtx is the context of Close's own barrier.
	closed  error
	keepCtx uint32
	// last caches the queues of the context used last (most traffic is on one), sparing a
	// map lookup per message. Guarded by mu.
	lastCtx uint32
	last    *queues
}

type queues struct {
	posted     list[Request, *Request]             // receives waiting for a message
	probes     list[Request, *Request]             // blocking probes waiting for a message to queue
	unexpected list[unexpectedMsg, *unexpectedMsg] // messages waiting for a receive
}

// unexpectedMsg is an arrived message no receive has claimed yet. An eager message's payload
// is copied (it is small: at most the eager limit); a rendezvous message stays with its sender
// until a receive fetches it.
type unexpectedMsg struct {
	env        transport.Envelope
	data       []byte // the eager payload: store[:env.Size]
	store      []byte // the record's buffer, kept with it in its pool (buffers.go)
	rndv       transport.Rendezvous
	prev, next *unexpectedMsg
}

func (u *unexpectedMsg) links() (prev, next **unexpectedMsg) { return &u.prev, &u.next }
func (r *Request) links() (prev, next **Request)             { return &r.prev, &r.next }

func newMatcher() *matcher {
	return &matcher{ctxs: make(map[uint32]*queues), lost: make(map[int]error)}
}

func (m *matcher) queues(ctx uint32) *queues {
	if m.last != nil && m.lastCtx == ctx {
		return m.last
	}
	q := m.ctxs[ctx]
	defer func() { m.lastCtx, m.last = ctx, q }()
	if q == nil {
		q = &queues{}
		m.ctxs[ctx] = q
	}
	return q
}

func accepts(peer, tag int, env *transport.Envelope) bool {
	return (peer == AnySource || peer == env.Src) && (tag == AnyTag || tag == env.Tag)
}

// Deliver implements transport.Sink.
func (m *matcher) Deliver(env transport.Envelope, payload []byte, rndv transport.Rendezvous) {
	m.mu.Lock()
	q := m.queues(env.Ctx)
	for r := q.posted.head; r != nil; r = r.next {
		if accepts(r.peer, r.tag, &env) {
			q.posted.remove(r)
			r.posted = false
			m.mu.Unlock()
			take(r, &env, payload, rndv)
			return
		}
	}
	u := newUnexpected(env, payload, rndv)
	q.unexpected.pushBack(u)
	// Probes see only messages that no posted receive claimed: what a following receive
	// would get.
	var probes []*Request
	for r := q.probes.head; r != nil; {
		next := r.next
		if accepts(r.peer, r.tag, &env) {
			q.probes.remove(r)
			r.posted = false
			r.status = Status{Source: env.Src, Tag: env.Tag, Bytes: env.Size}
			probes = append(probes, r)
		}
		r = next
	}
	m.mu.Unlock()
	for _, r := range probes {
		r.Complete(nil)
	}
}

// take delivers a matched message into receive r.
func take(r *Request, env *transport.Envelope, payload []byte, rndv transport.Rendezvous) {
	r.status = Status{Source: env.Src, Tag: env.Tag, Bytes: env.Size}
	n := env.Size
	if n > len(r.buf) {
		r.trunc = true
		n = len(r.buf)
	}
	if rndv != nil {
		rndv.Fetch(r.buf[:n], r)
		return
	}
	copy(r.buf, payload[:n])
	r.Complete(nil)
}

// post starts receive (or probe) r: it takes the first queued message r accepts, or queues r.
func (m *matcher) post(r *Request) {
	m.mu.Lock()
	if m.closed != nil && r.ctx != m.keepCtx {
		err := m.closed
		m.mu.Unlock()
		r.Complete(err)
		return
	}
	q := m.queues(r.ctx)
	for u := q.unexpected.head; u != nil; u = u.next {
		if !accepts(r.peer, r.tag, &u.env) {
			continue
		}
		if r.op == opProbe {
			r.status = Status{Source: u.env.Src, Tag: u.env.Tag, Bytes: u.env.Size}
			m.mu.Unlock()
			r.Complete(nil)
			return
		}
		q.unexpected.remove(u)
		m.mu.Unlock()
		take(r, &u.env, u.data, u.rndv)
		freeUnexpected(u)
		return
	}
	if err := m.lostErr(r.peer); err != nil {
		m.mu.Unlock()
		r.Complete(err)
		return
	}
	r.posted = true
	if r.op == opProbe {
		q.probes.pushBack(r)
	} else {
		q.posted.pushBack(r)
	}
	m.mu.Unlock()
}

// lostErr returns why a receive from peer can never be satisfied, or nil. Called with mu held.
func (m *matcher) lostErr(peer int) error {
	if peer != AnySource {
		return m.lost[peer]
	}
	for _, err := range m.lost {
		return err // a wildcard receive fails once any peer is gone (as ULFM does)
	}
	return nil
}

// peek looks for a queued message without taking it (Iprobe).
func (m *matcher) peek(ctx uint32, peer, tag int) (Status, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.ctxs[ctx]
	if q == nil {
		return Status{}, false
	}
	for u := q.unexpected.head; u != nil; u = u.next {
		if accepts(peer, tag, &u.env) {
			return Status{Source: u.env.Src, Tag: u.env.Tag, Bytes: u.env.Size}, true
		}
	}
	return Status{}, false
}

// withdraw removes r from its queue if it is still posted, and reports whether it was.
func (m *matcher) withdraw(r *Request) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !r.posted {
		return false
	}
	q := m.ctxs[r.ctx]
	if r.op == opProbe {
		q.probes.remove(r)
	} else {
		q.posted.remove(r)
	}
	r.posted = false
	return true
}

// Lost implements transport.Sink: receives and probes that can no longer be satisfied fail.
func (m *matcher) Lost(peer int, err error) {
	m.mu.Lock()
	if _, seen := m.lost[peer]; seen {
		m.mu.Unlock()
		return
	}
	lerr := &PeerLostError{Rank: peer, Err: err}
	m.lost[peer] = lerr
	m.anyLost.Store(true)
	failed := m.takePosted(func(ctx uint32, r *Request) bool { return r.peer == peer || r.peer == AnySource })
	m.mu.Unlock()
	for _, r := range failed {
		r.Complete(lerr)
	}
}

// close completes every posted receive and probe, except those on context keep, with err,
// and makes post do the same from now on.
func (m *matcher) close(err error, keep uint32) {
	m.mu.Lock()
	m.closed, m.keepCtx = err, keep
	failed := m.takePosted(func(ctx uint32, _ *Request) bool { return ctx != keep })
	m.mu.Unlock()
	for _, r := range failed {
		r.Complete(err)
	}
}

// takePosted removes from the queues, and returns, every posted receive and probe that which
// selects. Called with mu held; the caller completes them once it has released mu.
func (m *matcher) takePosted(which func(ctx uint32, r *Request) bool) []*Request {
	var taken []*Request
	for ctx, q := range m.ctxs {
		for _, l := range []*list[Request, *Request]{&q.posted, &q.probes} {
			for r := l.head; r != nil; {
				next := r.next
				if which(ctx, r) {
					l.remove(r)
					r.posted = false
					taken = append(taken, r)
				}
				r = next
			}
		}
	}
	return taken
}

// isLost reports why peer is gone, or nil.
func (m *matcher) isLost(peer int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lost[peer]
}

// list is an intrusive doubly-linked list: the elements carry their own links, so queueing
// allocates nothing.
type list[T any, P node[T]] struct {
	head, tail *T
}

type node[T any] interface {
	*T
	links() (prev, next **T)
}

func (l *list[T, P]) pushBack(e *T) {
	prev, next := P(e).links()
	*prev, *next = l.tail, nil
	if l.tail != nil {
		_, tailNext := P(l.tail).links()
		*tailNext = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *list[T, P]) remove(e *T) {
	prev, next := P(e).links()
	if *prev != nil {
		_, prevNext := P(*prev).links()
		*prevNext = *next
	} else {
		l.head = *next
	}
	if *next != nil {
		nextPrev, _ := P(*next).links()
		*nextPrev = *prev
	} else {
		l.tail = *prev
	}
	*prev, *next = nil, nil
}
