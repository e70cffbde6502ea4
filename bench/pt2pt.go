package bench

import (
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// Point-to-point benchmarks, as OSU 7 measures them: a barrier before each size, warm-up
// iterations untimed, the clock read around the timed ones only.

const (
	tagData = 1
	tagAck  = 2
	ackSize = 4 // OSU's acknowledgement
	// maxRecvWindow bounds the memory of separate receive buffers per window slot; above it
	// the slots share one buffer, as OSU's do.
	maxRecvWindow = 64 << 20
)

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// payload returns a buffer of size bytes with every page touched.
func payload(size int, fill byte) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = fill
	}
	return b
}

// pingPong runs iters+warmup round trips with peer (first: this rank sends first) and returns
// the time of the timed ones.
func pingPong(c *comm.Comm, buf []byte, peer int, first bool, iters, warmup int) (time.Duration, error) {
	var start time.Time
	for i := range iters + warmup {
		if i == warmup {
			start = time.Now()
		}
		if first {
			if err := comm.Send(c, buf, peer, tagData); err != nil {
				return 0, err
			}
		}
		if _, err := comm.Recv(c, buf, peer, tagData); err != nil {
			return 0, err
		}
		if !first {
			if err := comm.Send(c, buf, peer, tagData); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

// measureLatency is osu_latency: rank 0 and rank 1 ping-pong; latency is half a round trip.
func measureLatency(e *env, size, iters, warmup int) ([]float64, error) {
	if err := e.c.Barrier(); err != nil {
		return nil, err
	}
	me := e.c.Rank()
	t, err := pingPong(e.c, payload(size, 'a'+byte(me)), 1-me, me == 0, iters, warmup)
	if err != nil || me != 0 {
		return nil, err
	}
	return []float64{micros(t) / float64(2*iters)}, nil
}

// measureMultiLat is osu_multi_lat: ranks r < N/2 ping-pong with r + N/2, all pairs at once;
// the result is the mean over every rank.
func measureMultiLat(e *env, size, iters, warmup int) ([]float64, error) {
	c := e.c
	half := c.Size() / 2
	me := c.Rank()
	peer, first := me+half, true
	if me >= half {
		peer, first = me-half, false
	}
	if err := c.Barrier(); err != nil {
		return nil, err
	}
	t, err := pingPong(c, payload(size, 'a'), peer, first, iters, warmup)
	if err != nil {
		return nil, err
	}
	lat := []float64{micros(t) / float64(2*iters)}
	if err := comm.Allreduce(c, lat, lat, comm.Sum); err != nil {
		return nil, err
	}
	if me != 0 {
		return nil, nil
	}
	return []float64{lat[0] / float64(c.Size())}, nil
}

// window holds a window's requests and its receive buffers.
type window struct {
	reqs []*comm.Request
	recv [][]byte // one per slot, or all the same buffer when they would be too large
	send []byte
	ack  []byte
}

func newWindow(size, n int) *window {
	w := &window{reqs: make([]*comm.Request, n), recv: make([][]byte, n), send: payload(size, 'a'), ack: make([]byte, ackSize)}
	shared := size*n > maxRecvWindow
	for i := range w.recv {
		if shared && i > 0 {
			w.recv[i] = w.recv[0]
			continue
		}
		w.recv[i] = payload(size, 'b')
	}
	return w
}

// sendBurst posts the window's sends to peer and waits for them.
func (w *window) sendBurst(c *comm.Comm, peer int) error {
	for j := range w.reqs {
		q, err := comm.Isend(c, w.send, peer, tagData)
		if err != nil {
			return err
		}
		w.reqs[j] = q
	}
	return comm.WaitAll(w.reqs...)
}

// recvBurst posts the window's receives from peer and waits for them.
func (w *window) recvBurst(c *comm.Comm, peer int) error {
	for j := range w.reqs {
		q, err := comm.Irecv(c, w.recv[j], peer, tagData)
		if err != nil {
			return err
		}
		w.reqs[j] = q
	}
	return comm.WaitAll(w.reqs...)
}

// stream runs osu_bw's loop between a sender and a receiver and returns the sender's time of
// the timed iterations (zero on the receiver).
func (w *window) stream(c *comm.Comm, peer int, sender bool, iters, warmup int) (time.Duration, error) {
	var start time.Time
	for i := range iters + warmup {
		if i == warmup {
			start = time.Now()
		}
		if sender {
			if err := w.sendBurst(c, peer); err != nil {
				return 0, err
			}
			if _, err := comm.Recv(c, w.ack, peer, tagAck); err != nil {
				return 0, err
			}
			continue
		}
		if err := w.recvBurst(c, peer); err != nil {
			return 0, err
		}
		if err := comm.Send(c, w.ack, peer, tagAck); err != nil {
			return 0, err
		}
	}
	if !sender {
		return 0, nil
	}
	return time.Since(start), nil
}

// mbps is OSU's bandwidth: 10^6 bytes per second.
func mbps(size, messages int, t time.Duration) float64 {
	return float64(size) / 1e6 * float64(messages) / t.Seconds()
}

// measureBW is osu_bw: rank 0 sends a window of messages, rank 1 acknowledges the window.
func measureBW(e *env, size, iters, warmup int) ([]float64, error) {
	w := newWindow(size, e.opt.Window)
	if err := e.c.Barrier(); err != nil {
		return nil, err
	}
	t, err := w.stream(e.c, 1-e.c.Rank(), e.c.Rank() == 0, iters, warmup)
	if err != nil || e.c.Rank() != 0 {
		return nil, err
	}
	return []float64{mbps(size, iters*e.opt.Window, t)}, nil
}

// measureBIBW is osu_bibw: both ranks post a window of receives and a window of sends.
func measureBIBW(e *env, size, iters, warmup int) ([]float64, error) {
	c := e.c
	peer := 1 - c.Rank()
	in, out := newWindow(size, e.opt.Window), newWindow(size, e.opt.Window)
	if err := c.Barrier(); err != nil {
		return nil, err
	}
	var start time.Time
	for i := range iters + warmup {
		if i == warmup {
			start = time.Now()
		}
		for j := range in.reqs {
			q, err := comm.Irecv(c, in.recv[j], peer, tagData)
			if err != nil {
				return nil, err
			}
			in.reqs[j] = q
		}
		if err := out.sendBurst(c, peer); err != nil {
			return nil, err
		}
		if err := comm.WaitAll(in.reqs...); err != nil {
			return nil, err
		}
	}
	t := time.Since(start)
	if c.Rank() != 0 {
		return nil, nil
	}
	return []float64{mbps(size, 2*iters*e.opt.Window, t)}, nil
}

// measureMBWMR is osu_mbw_mr: ranks r < N/2 stream windows to r + N/2, all pairs at once;
// bandwidth and message rate are summed over the senders.
func measureMBWMR(e *env, size, iters, warmup int) ([]float64, error) {
	c := e.c
	half := c.Size() / 2
	me := c.Rank()
	peer, sender := me+half, true
	if me >= half {
		peer, sender = me-half, false
	}
	w := newWindow(size, e.opt.Window)
	if err := c.Barrier(); err != nil {
		return nil, err
	}
	t, err := w.stream(c, peer, sender, iters, warmup)
	if err != nil {
		return nil, err
	}
	rates := []float64{0, 0}
	if sender {
		msgs := iters * e.opt.Window
		rates = []float64{mbps(size, msgs, t), float64(msgs) / t.Seconds()}
	}
	if err := comm.Allreduce(c, rates, rates, comm.Sum); err != nil {
		return nil, err
	}
	if me != 0 {
		return nil, nil
	}
	return rates, nil
}
