package collective

// alltoallvWindowed sends send's block j to rank j and receives rank i's block for this rank
// into recv's block i, in n-1 steps: in step s rank me sends to me+s and receives from me-s
// (the self block is a copy). At most window steps are in flight: window 1 is the pairwise
// exchange (one pair at a time, for large blocks whose transfers already fill the links),
// a larger one keeps several exchanges going (scattered over the ranks by the step order,
// so no rank is everyone's first partner).
//
// Ranks may choose different windows (each chooses from its own sizes) without deadlock: by
// induction on s, once every rank has finished steps < s, every rank may post step s, and the
// operations of step s match one another (me sends to me+s, which receives from me at its own
// step s); with one message per ordered pair and tag, nothing else can match them.
func alltoallvWindowed(c Comm, send []byte, sc, sd []int, recv []byte, rc, rd []int, window int) error {
	n, me := c.Size(), c.Rank()
	if err := checkBlocks("alltoallv send", n, sc, sd, len(send)); err != nil {
		return err
	}
	if err := checkBlocks("alltoallv recv", n, rc, rd, len(recv)); err != nil {
		return err
	}
	if sc[me] != rc[me] {
		return bufErr("alltoallv: rank %d sends itself %d bytes and receives %d", me, sc[me], rc[me])
	}
	copy(recv[rd[me]:rd[me]+rc[me]], send[sd[me]:sd[me]+sc[me]])
	window = max(1, min(window, n-1))
	var stack [2 * scatteredWindow]Request
	reqs := stack[:0]
	if 2*window > len(stack) {
		reqs = make([]Request, 2*window)
	}
	reqs = reqs[:2*window] // step s uses slots 2*(s%window) and the next
	for s := 1; s < n; s++ {
		slot := reqs[2*(s%window) : 2*(s%window)+2]
		if err := waitAll(slot); err != nil {
			return joinWait(err, reqs)
		}
		dst, src := (me+s)%n, (me-s+n)%n
		if rc[src] > 0 {
			q, err := c.Irecv(recv[rd[src]:rd[src]+rc[src]], src, tagAlltoallv)
			if err != nil {
				return joinWait(err, reqs)
			}
			slot[0] = q
		}
		if sc[dst] > 0 {
			q, err := c.Isend(send[sd[dst]:sd[dst]+sc[dst]], dst, tagAlltoallv)
			if err != nil {
				return joinWait(err, reqs)
			}
			slot[1] = q
		}
	}
	return waitAll(reqs)
}
