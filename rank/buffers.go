package rank

import (
	"math/bits"
	"sync"

	"github.com/gorun-hpc/gorun/transport"
)

// Unexpected messages are pooled by power-of-two size class of their eager payload, the
// record together with its buffer, so that a steady stream of unexpected messages allocates
// nothing once the pools are warm. Classes run from 64 bytes to transport.MaxEager; a
// rendezvous message (its payload stays with the sender) takes the smallest.
const (
	minClassShift = 6
	maxClassShift = 20 // 1 << maxClassShift == transport.MaxEager
)

var unexpectedClasses [maxClassShift - minClassShift + 1]sync.Pool // *unexpectedMsg

func sizeClass(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// newUnexpected returns a record of the arrived message env, holding a copy of its eager
// payload (rndv nil) or its rendezvous.
func newUnexpected(env transport.Envelope, payload []byte, rndv transport.Rendezvous) *unexpectedMsg {
	n := 0
	if rndv == nil {
		n = len(payload)
	}
	var u *unexpectedMsg
	if n <= transport.MaxEager {
		c := sizeClass(n)
		u, _ = unexpectedClasses[c].Get().(*unexpectedMsg)
		if u == nil {
			u = &unexpectedMsg{store: make([]byte, 1<<(c+minClassShift))}
		}
	} else {
		u = &unexpectedMsg{store: make([]byte, n)} // not a class: never pooled
	}
	u.env, u.rndv, u.data = env, rndv, u.store[:n]
	copy(u.data, payload)
	return u
}

// freeUnexpected returns a record that nothing refers to any more to its pool.
func freeUnexpected(u *unexpectedMsg) {
	c := sizeClass(cap(u.store))
	if cap(u.store) != 1<<(c+minClassShift) || c >= len(unexpectedClasses) {
		return
	}
	*u = unexpectedMsg{store: u.store}
	unexpectedClasses[c].Put(u)
}
