// Package transporttest holds what the tests of more than one transport share.
package transporttest

import "sync"

// Completion is a transport.Completion that counts the calls it gets: a transport must call
// it exactly once.
type Completion struct {
	mu    sync.Mutex
	calls int
	err   error
}

// Complete records one call.
func (c *Completion) Complete(err error) {
	c.mu.Lock()
	c.calls++
	c.err = err
	c.mu.Unlock()
}

// Result returns how many calls it got and the last one's error.
func (c *Completion) Result() (calls int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.err
}
