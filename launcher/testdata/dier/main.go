// Command dier is a rank that SIGKILLs itself (or, in one scenario, only stalls) at a chosen
// phase of a job, for the launcher's death tests:
//
//	dier SCENARIO VICTIM
//
// Every rank prints "pid RANK PID" first; rank 0 also prints "job JOBID". The victim prints
// "kill RANK UNIXNANO" right before it kills itself, so that the test can time the job's end
// from the kill. Ranks that are not the victim run the scenario as a program would and fail
// (exit 1, "FAIL: ..." on stderr) when a call returns an error. A victim that cannot see its
// phase arrive within phaseLimit exits 3 with "phase missed: ...", so that a test never
// passes on a death at the wrong moment.
//
// Scenarios:
//
//	preinit    the victim dies before comm.Init, once every other rank waits in its
//	           start-up PMI barrier
//	member     the victim (not rank 0) passes the start-up barrier but never fetches the
//	           segment; it dies once the node's first rank has accepted every other rank's
//	           connection and waits for the victim's
//	leader     rank 0 (the victim) dies while serving the segment: every other rank but the
//	           last has connected and waits for it; the last rank passes the start-up barrier
//	           only once rank 0 is dead (its barrier_out is held back), then tries to fetch
//	leaderearly rank 0 (the victim) passes the barrier, never creates the segment, and dies
//	           while the others try to reach it
//	transfer   rank 0 sends 64 MiB to rank 1 over and over; the victim (0 or 1) dies in the
//	           middle of the third or a later transfer
//	allreduce  every rank allreduces 32 MiB over and over; the victim dies in the middle of one
//	bcast      rank 0 broadcasts 32 MiB over and over; the victim dies in the middle of one
//	close      after a barrier the others call Close; the victim dies once they are in it
//	stall      nobody dies: the last rank's barrier_out is held back for good, so it never
//	           fetches the segment and the others wait in the segment handoff until killed
//
// With DIER_IGNORE_TERM=1 the ranks ignore SIGTERM, so that a job with a long grace period
// shows whether the survivors notice the death themselves.
//
// The rank sees where the others are from outside the library: DIER_DIR is a directory
// where ranks leave marker files (pid-R, barrier-R when rank R sent barrier_in, closing-R,
// killed-R), the PMI wire protocol is watched by putting a socketpair between comm.Init and the
// launcher's socket (tap.go), and the segment handoff by the node's first rank's socket in
// /proc/net/unix (its name, "@gorun-seg-…-LEADERPID", is transport/shm's shareSocket).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/comm"
)

// phaseLimit bounds every wait for other ranks to reach a phase (long: the machine may be
// loaded many times over).
const phaseLimit = 20 * time.Second

var (
	me, size int
	dir      string
)

func main() {
	if len(os.Args) != 3 {
		fail("usage: dier SCENARIO VICTIM")
	}
	scenario := os.Args[1]
	victim, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fail("victim %q: %v", os.Args[2], err)
	}
	me, _ = strconv.Atoi(os.Getenv("PMI_RANK"))
	size, _ = strconv.Atoi(os.Getenv("PMI_SIZE"))
	dir = os.Getenv("DIER_DIR")
	if os.Getenv("DIER_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	fmt.Printf("pid %d %d\n", me, os.Getpid())
	if me == 0 {
		fmt.Printf("job %s\n", os.Getenv("GORUN_JOBID"))
	}
	mark("pid-"+strconv.Itoa(me), strconv.Itoa(os.Getpid()))
	f, ok := scenarios[scenario]
	if !ok {
		fail("unknown scenario %q", scenario)
	}
	f(me == victim)
}

var scenarios = map[string]func(victim bool){
	"preinit":     preinit,
	"member":      member,
	"leader":      leader,
	"leaderearly": leaderEarly,
	"transfer":    transfer,
	"allreduce":   allreduce,
	"bcast":       bcast,
	"close":       closing,
	"stall":       stall,
}

func preinit(victim bool) {
	if victim {
		for r := range size {
			if r != me {
				waitFile("barrier-" + strconv.Itoa(r))
			}
		}
		time.Sleep(20 * time.Millisecond)
		die()
	}
	tap(markBarrier, nil)
	initWorld()
	fail("init succeeded although rank %s never joined", os.Args[2])
}

func member(victim bool) {
	if !victim {
		initWorld()
		fail("init succeeded although a rank never fetched the segment")
	}
	if me == 0 {
		fail("member: the victim must not be rank 0")
	}
	tap(nil, holdBarrierOut)
	go func() {
		waitSegment(leaderPid(), size-2)
		time.Sleep(20 * time.Millisecond) // the last one's doorbell reaches the leader
		die()
	}()
	initWorld()
	fail("init returned through a held barrier")
}

func leader(victim bool) {
	switch {
	case victim && me != 0:
		fail("leader: the victim must be rank 0")
	case victim:
		go func() {
			waitSegment(os.Getpid(), size-2)
			time.Sleep(20 * time.Millisecond)
			die()
		}()
	case me == size-1:
		tap(nil, holdBarrierOut)
	}
	initWorld()
	fail("init succeeded although a rank never fetched the segment")
}

func leaderEarly(victim bool) {
	if !victim {
		initWorld()
		fail("init succeeded although the node's first rank never served the segment")
	}
	if me != 0 {
		fail("leaderearly: the victim must be rank 0")
	}
	held := make(chan struct{})
	var once atomic.Bool
	tap(nil, func(line string) {
		if isBarrierOut(line) && once.CompareAndSwap(false, true) {
			close(held)
			select {} // until this rank dies
		}
	})
	go func() {
		select {
		case <-held:
		case <-time.After(phaseLimit):
			missed("the start-up barrier did not complete")
		}
		time.Sleep(50 * time.Millisecond) // the others are trying to reach this rank
		die()
	}()
	initWorld()
	fail("init returned through a held barrier")
}

func stall(bool) {
	if me == size-1 {
		tap(nil, holdBarrierOut)
	}
	initWorld()
	fail("init succeeded although a rank never fetched the segment")
}

// transfer: rank 0 sends 64 MiB to rank 1, over and over.
func transfer(victim bool) {
	world := initWorld()
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	var p progress
	if victim {
		p.killMidway(2)
	}
	for i := 0; i < 200; i++ {
		p.run(func() {
			var err error
			if me == 0 {
				err = comm.Send(world, buf, 1, 0)
			} else {
				_, err = comm.Recv(world, buf, 0, 0)
			}
			check(err, "transfer %d", i)
		})
	}
	fail("200 transfers and nobody died")
}

func allreduce(victim bool) {
	world := initWorld()
	send, recv := make([]float64, 4<<20), make([]float64, 4<<20)
	for i := range send {
		send[i] = float64(me + i)
	}
	var p progress
	if victim {
		p.killMidway(2)
	}
	for i := 0; i < 500; i++ {
		p.run(func() { check(comm.Allreduce(world, send, recv, comm.Sum), "allreduce %d", i) })
	}
	fail("500 allreduces and nobody died")
}

func bcast(victim bool) {
	world := initWorld()
	buf := make([]float64, 4<<20)
	var p progress
	if victim {
		p.killMidway(2)
	}
	for i := 0; i < 500; i++ {
		p.run(func() { check(comm.Bcast(world, buf, 0), "bcast %d", i) })
	}
	fail("500 broadcasts and nobody died")
}

func closing(victim bool) {
	world := initWorld()
	check(world.Barrier(), "barrier")
	if victim {
		for r := range size {
			if r != me {
				waitFile("closing-" + strconv.Itoa(r))
			}
		}
		time.Sleep(20 * time.Millisecond) // they are in the final barrier
		die()
	}
	mark("closing-"+strconv.Itoa(me), "")
	check(world.Close(), "close")
	fail("close succeeded although a rank never called it")
}

// progress tells a killer goroutine how far the rank's operations are.
type progress struct {
	done     atomic.Int64 // operations completed
	shortest atomic.Int64 // how long the shortest of them took (ns)
	since    atomic.Int64 // when the current operation began (UnixNano); 0 between operations
}

func (p *progress) run(op func()) {
	start := time.Now()
	p.since.Store(start.UnixNano())
	op()
	p.since.Store(0)
	if d := int64(time.Since(start)); p.done.Load() == 0 || d < p.shortest.Load() {
		p.shortest.Store(d)
	}
	p.done.Add(1)
}

// maxMidway caps how far into an operation the victim dies: every operation here lasts
// longer (a 64 MiB transfer or a 32 MiB collective), however loaded the machine.
const maxMidway = 2 * time.Millisecond

// killMidway kills the rank in the middle of an operation, once after have completed: when
// it has lasted half the shortest of those, or maxMidway. The killer gets a P of its own, so that it runs
// while the rank's operation keeps every other P busy.
func (p *progress) killMidway(after int64) {
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	go func() {
		deadline := time.Now().Add(phaseLimit)
		for time.Now().Before(deadline) {
			if p.done.Load() >= after {
				midway := min(time.Duration(p.shortest.Load()/2), maxMidway)
				if s := p.since.Load(); s != 0 && time.Since(time.Unix(0, s)) >= midway {
					die()
				}
			}
			time.Sleep(50 * time.Microsecond)
		}
		missed("not midway through an operation after %d completed", after)
	}()
}

func initWorld() *comm.Comm {
	world, err := comm.Init()
	check(err, "init")
	return world
}

// die kills this rank with SIGKILL, announcing the moment first.
func die() {
	mark("killed-"+strconv.Itoa(me), strconv.Itoa(os.Getpid()))
	fmt.Printf("kill %d %d\n", me, time.Now().UnixNano())
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// mark leaves marker file name (with content) in DIER_DIR, complete once it has its name.
func mark(name, content string) {
	if dir == "" {
		return
	}
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		fail("mark %s: %v", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		fail("mark %s: %v", name, err)
	}
}

// waitFile waits for marker name and returns its content.
func waitFile(name string) string {
	if dir == "" {
		fail("DIER_DIR is not set")
	}
	var b []byte
	waitUntil("rank marker "+name, func() bool {
		var err error
		b, err = os.ReadFile(filepath.Join(dir, name))
		return err == nil
	})
	return string(b)
}

func leaderPid() int {
	pid, err := strconv.Atoi(waitFile("pid-0"))
	check(err, "rank 0's pid")
	return pid
}

// waitSegment waits until the node's first rank (leaderPid) listens on its segment socket and
// has accepted n connections.
func waitSegment(leaderPid, n int) {
	waitUntil(fmt.Sprintf("rank 0 (pid %d) serving the segment with %d connection(s)", leaderPid, n), func() bool {
		listening, accepted := segmentSocket(leaderPid)
		return listening && accepted >= n
	})
}

// segmentSocket reads /proc/net/unix for the segment socket of the node's first rank: whether
// it listens, and how many connections it has accepted (an accepted socket carries the
// listener's name; the connecting side has none).
func segmentSocket(leaderPid int) (listening bool, accepted int) {
	b, err := os.ReadFile("/proc/net/unix")
	check(err, "read /proc/net/unix")
	suffix := "-" + strconv.Itoa(leaderPid)
	for _, line := range strings.Split(string(b), "\n") {
		// Num RefCount Protocol Flags Type St Inode Path
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[7], "@gorun-seg-") || !strings.HasSuffix(f[7], suffix) {
			continue
		}
		switch f[5] {
		case "01":
			listening = true
		case "03":
			accepted++
		}
	}
	return listening, accepted
}

func waitUntil(what string, cond func() bool) {
	deadline := time.Now().Add(phaseLimit)
	for !cond() {
		if time.Now().After(deadline) {
			missed("%s: not within %v", what, phaseLimit)
		}
		time.Sleep(time.Millisecond)
	}
}

func missed(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "phase missed: rank %d: "+format+"\n", append([]any{me}, args...)...)
	os.Exit(3)
}

func check(err error, what string, args ...any) {
	if err != nil {
		fail("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: rank %d at %d: "+format+"\n", append([]any{me, time.Now().UnixNano()}, args...)...)
	os.Exit(1)
}
