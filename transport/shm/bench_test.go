package shm

import (
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
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
// the pipelined two-copy path of large messages (compare: shared/anchors copybw ring).
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
			w := &bulkWriter{bulkRegion: newBulkRegion(mem, testLine)}
			r := &bulkReader{bulkRegion: newBulkRegion(mem, testLine)}
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
						off += w.write(src[off:], tc.chunk)
					}
				}
			}()
			pinThread(1)
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			for range b.N {
				for off := 0; off < len(dst); {
					n, _ := r.read(dst[off:], len(dst)-off, tc.chunk)
					off += n
				}
			}
			wg.Wait()
		})
	}
}
