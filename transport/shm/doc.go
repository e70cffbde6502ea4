// Package shm is the shared-memory transport between the ranks of one node: a
// transport.Endpoint per other local rank (peer), and the progress engine
// (transport.Poller) that a waiting goroutine of the rank, its driver, runs.
//
// # The node segment
//
// One segment per node, created by the node's first rank and handed to the others over a Unix
// socket (segment.go), mapped once by every local rank and never remapped. Everything in it
// is a fixed-width little-endian word at a fixed offset; references are offsets, never
// pointers (cma.go's addrOf is the one, deliberate, exception). For n local ranks and a cache
// line of line bytes (layout.go has the exact offsets and their bounds):
//
//	offset   region                            size
//	0        +-------------------------------+
//	         | header                        |  48 bytes (hdrLen), to the next line
//	ctlOff   +-------------------------------+
//	         | control block of rank 0       |  ctlSize = (1 + summary lines) lines:
//	         |   line 0: sleeping, cmaState, |    line 0, the owner's words;
//	         |           cmaProbeAddr        |    then ceil(n / (8·line)) lines of
//	         |   line 1..: summary bitmap    |    summary bits, one per local rank
//	         | ... rank n-1                  |  n × ctlSize
//	ringOff  +-------------------------------+
//	         | ring[0][0] ... ring[n-1][n-1] |  n × n × (line + ringCap), src-major:
//	         |   head line | records         |    ring[src][dst] = ringOff + (src·n+dst)·ringSize
//	bulkOff  +-------------------------------+
//	         | bulk[0][0] ... bulk[n-1][n-1] |  n × n × (2·line + bulkCap), src-major
//	         |   tail line | head line | data|
//	collOff  +-------------------------------+
//	         | arena: barrier counter line   |  line
//	         | slot of rank 0: half 0|half 1 |  n × collSlot, each half a stamp u64
//	         | ... rank n-1                  |    then HalfSize bytes of data
//	         +-------------------------------+  the end rounded up to 4096 (size)
//
// ring[src][dst] and bulk[src][dst] carry from src to dst: src writes the records and data
// (and asks for room), dst its head (and, in a ring, zeroes the first word of each line it
// frees); ring[i][i] and bulk[i][i] are never touched (an untouched memfd page costs no
// memory). ringSize = line + ringCap and bulkSize = 2·line + bulkCap are the regions'
// strides; ringCap, bulkCap and collSlot are whole lines. The pictures of each part, with
// who writes each word: layout.go (header, control block), ring.go (ring, record), bulk.go
// (bulk pipe), arena.go (arena).
//
// # An eager message
//
// A message of at most the eager limit (Config.EagerLimit, and half a ring) is one record:
//
//  1. peer.Send picks the protocol (Config.protocol: protoEager) and calls peer.put, which
//     takes the peer's mu and calls peer.putLocked.
//  2. putLocked, if nothing is queued before the record, writes it with producer.writeHeld
//     (ring.go): the 24-byte header (putHeader), the payload by sharedcopy.Copy, then the
//     stamp (producer.publish), an atomic store that publishes the record. With batching
//     (Config.BatchLimit > 1) the stamp of a batch's first record is withheld
//     (peer.batchLocked) and stored later by peer.flushLocked (at the batch limit, when
//     anything else is sent, or at the flush timeout: peer.flushAndNotify). If the ring has
//     no room the record is queued and the producer asks for room
//     (producer.requestSpace); the driver writes the queue later (peer.writeQueued).
//  3. Once mu is released, peer.finishPut calls Transport.notify: it sets this rank's bit in
//     the receiver's summary bitmap (if not already set) and, if the receiver declared itself
//     asleep, takes the declaration with a CAS and rings its doorbell (ringBell, a raw
//     write(2) to its eventfd; doorbell.go). Then, if the record was written rather than
//     queued, the send's completion is told (a queued one's by writeQueued).
//  4. The receiver's driver finds the record in Transport.Poll: through its summary words
//     (loaded, cleared, then the rings of the bits set are drained) or, on a node of few
//     ranks, by looking at every ring; a sleeping driver (Transport.Sleep, doorbell.wait)
//     is woken by the doorbell first.
//  5. Transport.drain takes up to drainBudget records: consumer.next (ring.go) loads the
//     stamp at its position and checks the record (consumer.check; a bad one is a
//     *transport.CorruptError and the peer is lost: peer.lose), peer.handle (recv.go) hands
//     the payload, still in the ring, to the sink (transport.Sink.Deliver), and
//     consumer.release zeroes the first word of each line the record used and moves on,
//     publishing head every quarter ring (consumer.publish). At the end, if the sender asked
//     for room, consumer.flushIfWanted publishes head and says so, and drain notifies it.
//
// # A large message
//
// Anything larger, and every synchronous send, goes by rendezvous (rendezvous.go):
//
//  1. peer.Send writes an RTS record (size, a cookie naming the send in p.sends, the
//     protocol, and for protoCMA the payload's address) through peer.putLocked, as above.
//     For protoCMA it first pins the payload (runtime.Pinner) and takes its address
//     (addrOf); for protoInline (a small synchronous send) the payload rides in the RTS.
//  2. The receiver's peer.handle makes an announcement of it and delivers that to the sink
//     (no payload); the matching engine calls announcement.Fetch once a receive matches.
//  3. Fetch, by protocol:
//     protoInline: copies the payload out of the announcement and answers FIN
//     (peer.control(recFin, …)).
//     protoCMA, the single-copy path: cmaRead reads the sender's pinned buffer straight into
//     the receive buffer with process_vm_readv (cma.go) and answers FIN; if the kernel
//     refuses, it goes on as protoPipe.
//     protoPipe: appends a largeRecv to the peer's fetches (under inMu), answers CTS and
//     wakes its own driver (Transport.Wake).
//  4. FIN: the sender's peer.handle finds the send by its cookie and completes it
//     (largeSend.finish, which unpins the payload).
//  5. CTS, the pipelined path: the sender's peer.handle appends the send to the peer's
//     streams. Its driver's peer.pumpOut (pump.go) copies the payload into the pair's bulk
//     pipe a chunk (Config.Chunk) at a time (bulkWriter.write: sharedcopy.Copy, then a store
//     of tail), notifying the receiver after each; when the pipe has no room for a whole
//     chunk it asks for room (bulkWriter.requestSpace) and tries once more. Meanwhile the
//     receiver's peer.pumpIn copies chunks out into the receive buffer (bulkReader.read,
//     which stores head and reports whether the sender asked for room, and pumpIn notifies
//     it) and completes the receive when all of it has come. Bytes past the receive
//     buffer are read and dropped. The bulk pipe carries the sends in the order their CTS
//     arrived, the order the receiver matched them in, so both ends agree which bytes are
//     whose. The send completes after its last chunk (largeSend.finish).
//
// # Sleeping and waking
//
// A driver that finds nothing spins and yields (rank/progress.go), then sleeps
// (Transport.Sleep): it publishes how far it has read every ring, declares itself asleep
// (its control block's sleeping word), renews its requests for room
// (Transport.renewRequests), looks once more (hasWork), and reads its doorbell through the
// netpoller (doorbell.wait, a raw read(2); rawsys.go says why raw). Whoever publishes something a sleeper may wait for rings it only if it takes the
// declaration (Transport.notify, Arena's wakeSleepers). doorbell.go gives the argument that
// no wake-up is lost, producer.requestSpace the one for room.
//
// # A peer's end
//
// A peer whose process has exited (Transport.Check: its pidfd, or kill(pid, 0)) is lost once
// its last records are taken (Transport.exited); one that breaks the format is lost at once
// (peer.lose). Close ends every peer (peer.close). Either way peer.end completes everything
// in flight with the peer with the reason (lifecycle.go).
//
// # Files
//
//	doc.go         this overview
//	layout.go      the segment's layout: offsets, bounds, the header
//	segment.go     creating, sealing and handing over the segment
//	transport.go   Config, New, the start-up meeting, Close
//	protocol.go    which protocol a message takes
//	peer.go        the peer: its fields, their locks
//	send.go        the send side: records, the queue, batches
//	recv.go        the receive side: what the driver does with each record
//	rendezvous.go  the large-message protocol: announcements and Fetch
//	pump.go        the bulk pumps
//	lifecycle.go   a peer's end: lose, close
//	ring.go        the record ring (one producer, one consumer)
//	bulk.go        the bulk pipe
//	cma.go         single copy with process_vm_readv
//	arena.go       the collective arena
//	wait.go        Poll, Sleep, Wake, Check
//	doorbell.go    eventfd doorbells
//	rawsys.go      the raw system calls of the wake/sleep path
//	procwatch.go   watching local processes during the handoff
package shm
