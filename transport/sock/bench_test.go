package sock

import (
	"fmt"
	"testing"

	"github.com/gorun-hpc/gorun/transport"
)

// echoSink signals every arrival (after fetching a rendezvous payload into buf).
type echoSink struct {
	buf     []byte
	arrived chan struct{}
}

func (s *echoSink) Deliver(env transport.Envelope, payload []byte, r transport.Rendezvous) {
	if r == nil {
		copy(s.buf, payload)
		s.arrived <- struct{}{}
		return
	}
	r.Fetch(s.buf[:env.Size], s)
}

func (s *echoSink) Complete(error)  { s.arrived <- struct{}{} }
func (s *echoSink) Lost(int, error) {}

type discard struct{}

func (discard) Complete(error) {}

// BenchmarkPingPong measures one-way latency over a TCP connection between two Nets in one
// process (ns/op is a round trip / 2 … see ns/one-way): the transport alone, without matching
// or a second process. The multi-process figure is gorun-bench latency --transport tcp.
func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{8, 4 << 10, 64 << 10, 1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			sa := &echoSink{buf: make([]byte, size), arrived: make(chan struct{}, 1)}
			sb := &echoSink{buf: make([]byte, size), arrived: make(chan struct{}, 1)}
			a, err := Listen("tcp", "127.0.0.1:0", Config{Self: 0, Key: testKey, Sink: sa})
			if err != nil {
				b.Fatal(err)
			}
			c, err := Listen("tcp", "127.0.0.1:0", Config{Self: 1, Key: testKey, Sink: sb})
			if err != nil {
				b.Fatal(err)
			}
			errs := make(chan error, 2)
			go func() { errs <- a.Connect(b.Context(), nil, []int{1}) }()
			go func() { errs <- c.Connect(b.Context(), map[int][]string{0: {a.Addr()}}, nil) }()
			for range 2 {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			defer closeBoth(a, c)
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			go func() { // the echoing side
				for range b.N {
					<-sb.arrived
					c.Endpoint(0).Send(transport.Envelope{Src: 1, Size: size}, msg, false, discard{})
				}
			}()
			b.ResetTimer()
			for range b.N {
				a.Endpoint(1).Send(transport.Envelope{Src: 0, Size: size}, msg, false, discard{})
				<-sa.arrived
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/one-way")
		})
	}
}
