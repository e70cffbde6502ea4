package shm

// The bulk pumps: the driver moves the payloads of pipelined large messages (protoPipe, and
// protoCMA where the kernel refused the read) through the pair's bulk pipes, both ways at
// once. pumpOut copies the sends in p.streams (those whose CTS has arrived) into bulkW, in
// order; pumpIn copies bulkR out into the matched receives in p.fetches, in order. Each end
// notifies the other when it has published bytes or room the other may wait for.

// pumpOut streams the payloads of matched sends into the bulk pipe; the driver calls it.
func (p *peer) pumpOut() bool {
	did := false
	chunk := p.t.cfg.Chunk
	for len(p.streams) > 0 {
		s := p.streams[0]
		for s.off < len(s.payload) {
			n, err := p.bulkW.write(s.payload[s.off:], chunk)
			if n == 0 && err == nil {
				// No room: ask to be woken for it, then look at head again (the retry's
				// write reloads it); see bulkWriter.requestSpace for why no wake-up is lost.
				p.bulkW.requestSpace()
				n, err = p.bulkW.write(s.payload[s.off:], chunk)
			}
			if err != nil {
				p.lose(err)
				return true
			}
			if n == 0 {
				if did {
					p.t.notify(p, false)
				}
				return did
			}
			s.off += n
			did = true
			p.t.notify(p, false)
		}
		p.streams[0] = nil
		p.streams = p.streams[1:]
		s.finish(nil)
		did = true
	}
	return did
}

// pumpIn drains the bulk pipe into matched receives; the driver calls it. It holds p.inMu
// only to look at and pop the head of fetches, never while it copies, and completes a
// receive with it released.
func (p *peer) pumpIn() bool {
	did := false
	chunk := p.t.cfg.Chunk
	for {
		p.inMu.Lock()
		if len(p.fetches) == 0 {
			p.inMu.Unlock()
			return did
		}
		r := p.fetches[0]
		p.inMu.Unlock()
		for r.got < r.size {
			var dst []byte
			want := r.size - r.got
			if r.got < len(r.dst) {
				dst = r.dst[r.got:]
				want = len(dst)
			}
			n, wake, err := p.bulkR.read(dst, want, chunk)
			if err != nil {
				p.lose(err)
				return true
			}
			if wake {
				p.t.notify(p, false)
			}
			if n == 0 {
				return did
			}
			r.got += n
			did = true
		}
		p.inMu.Lock()
		p.fetches[0] = nil
		p.fetches = p.fetches[1:]
		p.nFetch.Store(int32(len(p.fetches)))
		p.inMu.Unlock()
		r.done.Complete(nil)
	}
}
