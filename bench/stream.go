package bench

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// stream_lat measures what batching costs a message: rank 0 sends a paced stream, one message
// every Options.Interval (default 10µs), each stamped with its send time; rank 1 takes the mean of arrival
// minus stamp. Both ranks read the same clock (they run on one host). With no batching this
// is the one-way latency of a message that finds the receiver waiting; with an aggregation
// limit A and a flush timeout τ (and an interval well under τ, so that batches are closed by
// the timeout), the reference text expects about τ/2 more.

// defaultInterval keeps the stream well below the rate one pair sustains (mbw_mr: some
// 500,000 small messages a second here), so that messages do not queue behind each other.
const defaultInterval = 10 * time.Microsecond

func (o *Options) interval() time.Duration {
	if o.Interval > 0 {
		return o.Interval
	}
	return defaultInterval
}

func measureStream(e *env, size, iters, warmup int) ([]float64, error) {
	if size < 8 {
		return nil, errors.New("stream_lat needs messages of at least 8 bytes (the send time)")
	}
	c := e.c
	buf := payload(size, 'a')
	if err := c.Barrier(); err != nil {
		return nil, err
	}
	mean := []float64{0}
	if c.Rank() == 0 {
		gap := e.opt.interval()
		next := time.Now()
		for range iters + warmup {
			for time.Now().Before(next) {
			}
			binary.LittleEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
			if err := comm.Send(c, buf, 1, tagData); err != nil {
				return nil, err
			}
			next = next.Add(gap)
		}
		if _, err := comm.Recv(c, mean, 1, tagAck); err != nil {
			return nil, err
		}
		return mean, nil
	}
	var total time.Duration
	for i := range iters + warmup {
		if _, err := comm.Recv(c, buf, 0, tagData); err != nil {
			return nil, err
		}
		sent := int64(binary.LittleEndian.Uint64(buf))
		if i >= warmup {
			total += time.Duration(time.Now().UnixNano() - sent)
		}
	}
	mean[0] = micros(total) / float64(iters)
	return nil, comm.Send(c, mean, 0, tagAck)
}
