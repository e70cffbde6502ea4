package rank

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/gorun-hpc/gorun/transport/shm"
	"github.com/gorun-hpc/gorun/tuning"
)

// ExplainSizes are the message sizes GORUN_EXPLAIN=1 and gorun --explain report on.
var ExplainSizes = []int{0, 8, 64, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20}

// Explain writes, for each message size, the protocol that the given tuning chooses on each
// path: shared memory (for a node that is or is not oversubscribed) and sockets, as the
// transports a rank creates from t (shmConfig, sockEager) would. It is what gorun --explain
// and GORUN_EXPLAIN=1 print.
func Explain(w io.Writer, t tuning.Params, sizes []int) error {
	fmt.Fprintf(w, "protocol choices from %s\n", t.Source)
	fmt.Fprintf(w, "  shm eager up to %s, sockets eager up to %s, single copy: %s\n",
		tuning.BytesText(shmConfig(t, false).EagerMax()), tuning.BytesText(sockEager(t)), t.CMA)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", tuning.BytesText(n),
			shmConfig(t, false).Protocol(n, false, true),
			shmConfig(t, true).Protocol(n, false, true),
			proto,
			shmConfig(t, false).Protocol(n, true, true))
	}
	return tw.Flush()
}
