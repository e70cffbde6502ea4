package shm

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/transport"
)

// pinThread locks the calling goroutine to its thread and the thread to cpu (if the machine
// has it), so a benchmark measures two cores talking, as two ranks would.
func pinThread(cpu int) {
	runtime.LockOSThread()
	if cpu >= runtime.NumCPU() {
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	unix.SchedSetaffinity(0, &set)
}

// BenchmarkBulkPipe streams messages through a bulk pipe from one pinned thread to another,
// the pipelined two-copy path of large messages (internal/sharedcopy says what it measured and against what).
func BenchmarkBulkPipe(b *testing.B) {
	for _, tc := range []struct {
		name        string
		pipe, chunk int
		msg         int
	}{
		{"1MiB/pipe256K/chunk32K", 256 << 10, 32 << 10, 1 << 20},
		{"1MiB/pipe512K/chunk64K", 512 << 10, 64 << 10, 1 << 20},
		{"1MiB/pipe1M/chunk64K", 1 << 20, 64 << 10, 1 << 20},
		{"1MiB/pipe1M/chunk128K", 1 << 20, 128 << 10, 1 << 20},
		{"1MiB/pipe2M/chunk128K", 2 << 20, 128 << 10, 1 << 20},
		{"4MiB/pipe512K/chunk64K", 512 << 10, 64 << 10, 4 << 20},
		{"4MiB/pipe1M/chunk64K", 1 << 20, 64 << 10, 4 << 20},
		{"4MiB/pipe2M/chunk128K", 2 << 20, 128 << 10, 4 << 20},
	} {
		b.Run(tc.name, func(b *testing.B) {
			mem, err := unix.Mmap(-1, 0, bulkBytes(tc.pipe, testLine), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Munmap(mem)
			w := &bulkWriter{bulkRegion: newBulkRegion(mem, testLine, 1)}
			r := &bulkReader{bulkRegion: newBulkRegion(mem, testLine, 1)}
			src, dst := make([]byte, tc.msg), make([]byte, tc.msg)
			b.SetBytes(int64(tc.msg))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				pinThread(0)
				defer runtime.UnlockOSThread()
				for range b.N {
					for off := 0; off < len(src); {
						n, _ := w.write(src[off:], tc.chunk)
						off += n
					}
				}
			}()
			pinThread(1)
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			for range b.N {
				for off := 0; off < len(dst); {
					n, _, _ := r.read(dst[off:], len(dst)-off, tc.chunk)
					off += n
				}
			}
			wg.Wait()
		})
	}
}

// countingSink counts arrivals and fetches rendezvous data into a fixed buffer; a goroutine
// driving the transport waits for the count by polling, as a rank's driver would.
type countingSink struct {
	buf  []byte
	done atomic.Int64
}

func (s *countingSink) Deliver(env transport.Envelope, payload []byte, r transport.Rendezvous) {
	if r == nil {
		copy(s.buf, payload)
		s.done.Add(1)
		return
	}
	r.Fetch(s.buf[:env.Size], s)
}

func (s *countingSink) Complete(error)  { s.done.Add(1) }
func (s *countingSink) Lost(int, error) {}
func (s *countingSink) wait(tr *Transport, n int64) {
	for s.done.Load() < n {
		tr.Poll()
	}
}

// sendCount counts completed sends.
type sendCount struct{ n atomic.Int64 }

func (s *sendCount) Complete(error) { s.n.Add(1) }

// BenchmarkPingPong measures one-way latency over shared memory between two pinned threads
// (ns/op is a round trip / 2): the transport alone, without matching or a second process.
// The multi-process figure is gorun-bench latency.
func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{8, 4 << 10, 64 << 10, 1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			local, pids := []int{0, 1}, []int{os.Getpid(), os.Getpid()}
			sinks := []*countingSink{{buf: make([]byte, size)}, {buf: make([]byte, size)}}
			ts := make([]*Transport, 2)
			errs := make(chan error, 2)
			job := fmt.Sprintf("bench-%d", time.Now().UnixNano())
			for i := range 2 {
				go func() {
					var err error
					ts[i], err = New(Config{Sink: sinks[i], Self: i, Local: local, Pids: pids, JobID: job, DisableCMA: true})
					errs <- err
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			defer ts[0].Close()
			defer ts[1].Close()
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // the echoing side
				defer wg.Done()
				pinThread(1)
				defer runtime.UnlockOSThread()
				var echoed sendCount
				for i := range int64(b.N) {
					sinks[1].wait(ts[1], i+1)
					ts[1].Endpoint(0).Send(transport.Envelope{Src: 1, Size: size}, msg, false, &echoed)
				}
				for echoed.n.Load() < int64(b.N) { // a large echo moves only while polled
					ts[1].Poll()
				}
			}()
			pinThread(0)
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			var pinged sendCount
			for i := range int64(b.N) {
				ts[0].Endpoint(1).Send(transport.Envelope{Src: 0, Size: size}, msg, false, &pinged)
				sinks[0].wait(ts[0], i+1)
			}
			b.StopTimer()
			wg.Wait()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/one-way")
		})
	}
}
