package rank

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/gorun-hpc/gorun/transport/shm"
	"github.com/gorun-hpc/gorun/transport/sock"
)

// ExplainSizes are the message sizes GORUN_EXPLAIN=1 and gorun --explain report on.
var ExplainSizes = []int{0, 8, 64, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20}

// Explain writes, for each message size, the protocol that the given tuning chooses on each
// path: shared memory (for a node that is or is not oversubscribed) and sockets. It is what
// gorun --explain and GORUN_EXPLAIN=1 print.
func Explain(w io.Writer, t Tuning, sizes []int) error {
	fmt.Fprintf(w, "protocol choices from %s\n", t.Source)
	fmt.Fprintf(w, "  shm eager up to %s, sockets eager up to %s, single copy: %s\n",
		bytesText(shmConfig(t, false).EagerMax()), bytesText(sockEager(t)), t.CMA)
	if t.ShmBatch > 1 {
		flush := t.ShmFlush
		if flush == 0 {
			flush = shm.DefaultFlushTimeout
		}
		fmt.Fprintf(w, "  shm eager messages batched %d at a time, flushed after %v\n", t.ShmBatch, flush)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "size\tshm\tshm (oversubscribed)\ttcp/unix\tSsend over shm")
	for _, n := range sizes {
		proto := "eager"
		if n > sockEager(t) {
			proto = "rendezvous"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", bytesText(n),
			shmConfig(t, false).Protocol(n, false, true),
			shmConfig(t, true).Protocol(n, false, true),
			proto,
			shmConfig(t, false).Protocol(n, true, true))
	}
	return tw.Flush()
}

// shmConfig is the shared-memory configuration a rank derives from t.
func shmConfig(t Tuning, oversubscribed bool) shm.Config {
	c := shm.Config{RingBytes: t.ShmRing, BulkBytes: t.ShmBulk, Chunk: t.ShmChunk, EagerLimit: t.ShmEager,
		BatchLimit: t.ShmBatch, FlushTimeout: t.ShmFlush}
	switch {
	case t.CMA == "off":
		c.DisableCMA = true
	case t.CMA == "on" || oversubscribed:
		// On an oversubscribed node the pipelined copy needs sender and receiver on CPUs at
		// once; a single copy needs only the receiver.
		c.CMAMin, c.CMAMax = t.CMAMin, maxMessage
	}
	return c
}

const maxMessage = int(^uint(0) >> 1)

func sockEager(t Tuning) int {
	if t.SockEager == 0 {
		return sock.DefaultEagerLimit
	}
	return t.SockEager
}

func bytesText(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
