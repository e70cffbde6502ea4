package comm

// Path names the transport that carries messages from this rank to rank r of c: "self",
// "shm", "unix" or "tcp".
func (c *Comm) Path(r int) (string, error) {
	if err := c.check(r, false); err != nil {
		return "", err
	}
	return c.w.Path(c.worldRank(r)), nil
}

// TransportStats counts the messages, and their bytes, that this rank has sent over one
// transport since Init (over all communicators, collectives included).
type TransportStats struct {
	Messages, Bytes uint64
}

// Stats returns what this rank has sent on each path: "self", "shm", "unix", "tcp".
func (c *Comm) Stats() map[string]TransportStats {
	out := map[string]TransportStats{}
	for path, n := range c.w.Stats() {
		out[path] = TransportStats{n.Messages, n.Bytes}
	}
	return out
}

// Refused is how many connections this rank has dropped since Init because they did not
// prove they hold the job's key (each is also reported on stderr, the first few of them).
func (c *Comm) Refused() int64 { return c.w.Refused() }
