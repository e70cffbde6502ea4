package collective

import (
	"errors"

	"github.com/gorun-hpc/gorun/internal/view"
)

// The irregular ("v") collectives move blocks of different sizes. Sizes and displacements are
// in bytes: block i has counts[i] bytes at buf[displs[i]:]. comm turns nil displacements into
// packed ones and checks that every block lies inside its buffer, so displs is never nil here;
// the bytes between blocks (gaps) are never written.
//
// A message is sent only for a block that is not empty, and both ends of every transfer know
// its size from their own arguments, so a zero count costs nothing, wherever it is.

// Tags of the irregular collectives, after collective.go's.
const (
	tagGatherv = tagCheck + 1 + iota
	tagGathervDirect
	tagScatterv
	tagScattervDirect
	tagAllgatherv
	tagAlltoallv
	tagReduceScatterV
	tagExscan
)

// checkBlocks reports counts and displs that do not describe n blocks inside a buffer of size
// bytes.
func checkBlocks(what string, n int, counts, displs []int, size int) error {
	if len(counts) != n || len(displs) != n {
		return bufErr("%s: %d counts and %d displacements for %d ranks", what, len(counts), len(displs), n)
	}
	for i := range n {
		if counts[i] < 0 || displs[i] < 0 || displs[i] > size || counts[i] > size-displs[i] {
			return bufErr("%s: block %d (%d bytes at %d) outside a buffer of %d", what, i, counts[i], displs[i], size)
		}
	}
	return nil
}

// exchange sends send to dst and receives recv from src at once, skipping an empty side: the
// other end skips it too, because both know the size.
func exchange(c Comm, send []byte, dst int, recv []byte, src, tag int) error {
	var reqs [2]Request
	if len(recv) > 0 {
		q, err := c.Irecv(recv, src, tag)
		if err != nil {
			return err
		}
		reqs[0] = q
	}
	if len(send) > 0 {
		q, err := c.Isend(send, dst, tag)
		if err != nil {
			return joinWait(err, reqs[:])
		}
		reqs[1] = q
	}
	return waitAll(reqs[:])
}

// sizesOf views a header of block sizes as bytes, for sending.
func sizesOf(h []int64) []byte { return view.Bytes(h) }

func total(h []int64) int {
	t := 0
	for _, x := range h {
		t += int(x)
	}
	return t
}

// linearStack is how many requests a linear algorithm keeps on the stack; a larger
// communicator's root allocates.
const linearStack = 16

// gathervLinear collects every rank's send into recv[displs[i]:][:counts[i]] at root, each
// block in one message straight to the root: the algorithm for communicators small enough
// that the root's n-1 receives cost less than a tree's steps, and what every rank runs when
// the table picks linear for this communicator whatever the size (so no rank needs a header).
func gathervLinear(c Comm, send, recv []byte, counts, displs []int, root int) error {
	n, me := c.Size(), c.Rank()
	if err := checkRoot(c, root); err != nil {
		return err
	}
	if me != root {
		if len(send) == 0 {
			return nil
		}
		return c.Send(send, root, tagGathervDirect)
	}
	if err := checkBlocks("gatherv", n, counts, displs, len(recv)); err != nil {
		return err
	}
	if counts[me] != len(send) {
		return bufErr("gatherv: the root sends %d bytes, its count says %d", len(send), counts[me])
	}
	var stack [linearStack]Request
	var from [linearStack]int
	reqs, ranks := stack[:0], from[:0]
	for i := range n {
		if i == me || counts[i] == 0 {
			continue
		}
		q, err := c.Irecv(recv[displs[i]:displs[i]+counts[i]], i, tagGathervDirect)
		if err != nil {
			return joinWait(err, reqs)
		}
		reqs, ranks = append(reqs, q), append(ranks, i)
	}
	copy(recv[displs[me]:], send)
	var errs []error
	for k, q := range reqs {
		got, err := q.Wait()
		if err == nil && got != counts[ranks[k]] {
			err = bufErr("gatherv: rank %d sent %d bytes, the root's count says %d", ranks[k], got, counts[ranks[k]])
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// scattervLinear is gathervLinear's inverse: the root sends each rank its block in one
// message.
func scattervLinear(c Comm, send, recv []byte, counts, displs []int, root int) error {
	n, me := c.Size(), c.Rank()
	if err := checkRoot(c, root); err != nil {
		return err
	}
	if me != root {
		if len(recv) == 0 {
			return nil
		}
		got, err := c.Recv(recv, root, tagScattervDirect)
		if err == nil && got != len(recv) {
			err = bufErr("scatterv: rank %d receives %d bytes, the root's count says %d", me, len(recv), got)
		}
		return err
	}
	if err := checkBlocks("scatterv", n, counts, displs, len(send)); err != nil {
		return err
	}
	if counts[me] != len(recv) {
		return bufErr("scatterv: the root receives %d bytes, its count says %d", len(recv), counts[me])
	}
	var stack [linearStack]Request
	reqs := stack[:0]
	for i := range n {
		if i == me || counts[i] == 0 {
			continue
		}
		q, err := c.Isend(send[displs[i]:displs[i]+counts[i]], i, tagScattervDirect)
		if err != nil {
			return joinWait(err, reqs)
		}
		reqs = append(reqs, q)
	}
	copy(recv, send[displs[me]:displs[me]+counts[me]])
	return waitAll(reqs)
}

// gathervTree collects every rank's send into recv[displs[i]:][:counts[i]] at root (counts
// and displs matter at the root only) along a binomial tree of relative ranks, except that a
// block for which direct(len) holds goes straight to the root in one message (the linear
// algorithm; direct always true makes it purely linear). Every rank decides for its own block
// and the root for every block by the same rule, from the same size, so they agree without
// talking.
//
// On the tree each rank sends its parent a header, the sizes of the blocks of its subtree's
// relative ranks (0 for a direct or empty one), then, if they are not all 0, those blocks
// packed in relative order. So a subtree's message has the size of what it holds, however
// irregular the counts: ceil(log2 n) steps and no block forwarded more than log2 n times.
func gathervTree(c Comm, send, recv []byte, counts, displs []int, root int, direct func(int) bool) error {
	n, me := c.Size(), c.Rank()
	if err := checkRoot(c, root); err != nil {
		return err
	}
	if me == root {
		if err := checkBlocks("gatherv", n, counts, displs, len(recv)); err != nil {
			return err
		}
		if counts[me] != len(send) {
			return bufErr("gatherv: the root sends %d bytes, its count says %d", len(send), counts[me])
		}
	}
	vr := (me - root + n) % n
	sub := subtree(vr, n)
	var reqs []Request
	if me == root {
		for i := range n {
			if i != me && counts[i] > 0 && direct(counts[i]) {
				q, err := c.Irecv(recv[displs[i]:displs[i]+counts[i]], i, tagGathervDirect)
				if err != nil {
					return joinWait(err, reqs)
				}
				reqs = append(reqs, q)
			}
		}
		copy(recv[displs[me]:], send)
	}
	mine := len(send)
	if me != root && direct(mine) {
		if mine > 0 {
			q, err := c.Isend(send, root, tagGathervDirect)
			if err != nil {
				return joinWait(err, reqs)
			}
			reqs = append(reqs, q)
		}
		mine = 0
	}
	if me == root {
		mine = 0 // the root's block is already in place
	}
	err := gathervTreePart(c, send[:mine], recv, counts, displs, root, vr, sub)
	return joinWait(err, reqs)
}

// gathervTreePart is gathervTree's tree: own is this rank's block if it travels on the tree.
func gathervTreePart(c Comm, own, recv []byte, counts, displs []int, root, vr, sub int) error {
	n := c.Size()
	head := make([]int64, sub)
	head[0] = int64(len(own))
	for mask := 1; mask < sub; mask <<= 1 {
		child := vr + mask
		cs := subtree(child, n)
		if _, err := c.Recv(sizesOf(head[mask:mask+cs]), (child+root)%n, tagGatherv); err != nil {
			return err
		}
	}
	all := total(head)
	buf := alloc(all)
	defer release(buf)
	copy(buf, own)
	at := len(own)
	for mask := 1; mask < sub; mask <<= 1 {
		child := vr + mask
		t := total(head[mask : mask+subtree(child, n)])
		if t > 0 {
			if _, err := c.Recv(buf[at:at+t], (child+root)%n, tagGatherv); err != nil {
				return err
			}
		}
		at += t
	}
	if vr != 0 {
		parent := (vr - (vr & -vr) + root) % n
		if err := c.Send(sizesOf(head), parent, tagGatherv); err != nil {
			return err
		}
		if all > 0 {
			return c.Send(buf, parent, tagGatherv)
		}
		return nil
	}
	at = 0
	for j := 1; j < n; j++ { // relative rank j is rank (j+root)%n
		i, h := (j+root)%n, int(head[j])
		if h == 0 {
			continue
		}
		if h != counts[i] {
			return bufErr("gatherv: rank %d sent %d bytes, the root's count says %d", i, h, counts[i])
		}
		copy(recv[displs[i]:displs[i]+h], buf[at:at+h])
		at += h
	}
	return nil
}

// scattervTree hands recv[...] of every rank its block send[displs[i]:][:counts[i]] from root
// (counts and displs matter at the root only): the inverse of gathervTree, with the same
// rule for which blocks go direct (the receiver applies it to len(recv)). Each rank receives
// from its parent the header of its subtree and then its blocks, keeps its own and passes the
// rest down, the farthest subtree first.
func scattervTree(c Comm, send, recv []byte, counts, displs []int, root int, direct func(int) bool) error {
	n, me := c.Size(), c.Rank()
	if err := checkRoot(c, root); err != nil {
		return err
	}
	vr := (me - root + n) % n
	head := make([]int64, subtree(vr, n))
	var buf []byte
	var reqs []Request
	var err error
	if me == root {
		buf, reqs, err = scattervRoot(c, send, recv, counts, displs, head, direct)
	} else {
		buf, reqs, err = scattervFromParent(c, recv, root, vr, head, direct)
	}
	defer release(buf)
	if err != nil {
		return joinWait(err, reqs)
	}
	if err := scattervDown(c, buf, root, vr, head); err != nil {
		return joinWait(err, reqs)
	}
	if me != root && !(len(recv) > 0 && direct(len(recv))) {
		if int(head[0]) != len(recv) {
			err = bufErr("scatterv: rank %d receives %d bytes, the root's count says %d", me, len(recv), head[0])
		} else {
			copy(recv, buf[:head[0]])
		}
	}
	return joinWait(err, reqs)
}

// scattervRoot starts the root's direct sends, fills head (every relative rank's block on the
// tree, 0 for a direct one) and packs those blocks in relative order into a new buffer.
func scattervRoot(c Comm, send, recv []byte, counts, displs []int, head []int64, direct func(int) bool) ([]byte, []Request, error) {
	n, me := c.Size(), c.Rank()
	if err := checkBlocks("scatterv", n, counts, displs, len(send)); err != nil {
		return nil, nil, err
	}
	if counts[me] != len(recv) {
		return nil, nil, bufErr("scatterv: the root receives %d bytes, its count says %d", len(recv), counts[me])
	}
	var reqs []Request
	for i := range n {
		if i != me && counts[i] > 0 && direct(counts[i]) {
			q, err := c.Isend(send[displs[i]:displs[i]+counts[i]], i, tagScattervDirect)
			if err != nil {
				return nil, reqs, err
			}
			reqs = append(reqs, q)
		}
	}
	for j := 1; j < n; j++ {
		if i := (j + me) % n; !direct(counts[i]) {
			head[j] = int64(counts[i])
		}
	}
	buf := alloc(total(head))
	at := 0
	for j := 1; j < n; j++ {
		i, h := (j+me)%n, int(head[j])
		copy(buf[at:at+h], send[displs[i]:])
		at += h
	}
	copy(recv, send[displs[me]:displs[me]+counts[me]])
	return buf, reqs, nil
}

// scattervFromParent posts this rank's direct receive, if its block goes direct, and
// receives its subtree's header (into head) and blocks (into a new buffer) from its parent.
func scattervFromParent(c Comm, recv []byte, root, vr int, head []int64, direct func(int) bool) ([]byte, []Request, error) {
	var reqs []Request
	if len(recv) > 0 && direct(len(recv)) {
		q, err := c.Irecv(recv, root, tagScattervDirect)
		if err != nil {
			return nil, nil, err
		}
		reqs = append(reqs, q)
	}
	parent := (vr - (vr & -vr) + root) % c.Size()
	if _, err := c.Recv(sizesOf(head), parent, tagScatterv); err != nil {
		return nil, reqs, err
	}
	buf := alloc(total(head))
	if len(buf) > 0 {
		if _, err := c.Recv(buf, parent, tagScatterv); err != nil {
			return buf, reqs, err
		}
	}
	return buf, reqs, nil
}

// scattervDown passes each child its part of head and buf, the farthest subtree first.
func scattervDown(c Comm, buf []byte, root, vr int, head []int64) error {
	n, sub := c.Size(), len(head)
	off := make([]int, sub+1) // where relative rank vr+k's block starts in buf
	for k := range sub {
		off[k+1] = off[k] + int(head[k])
	}
	mask := 1
	for mask < sub {
		mask <<= 1
	}
	for mask >>= 1; mask > 0; mask >>= 1 {
		if mask >= sub {
			continue
		}
		child := vr + mask
		cs := subtree(child, n)
		dst := (child + root) % n
		if err := c.Send(sizesOf(head[mask:mask+cs]), dst, tagScatterv); err != nil {
			return err
		}
		if off[mask+cs] > off[mask] {
			if err := c.Send(buf[off[mask]:off[mask+cs]], dst, tagScatterv); err != nil {
				return err
			}
		}
	}
	return nil
}
