package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// tap puts a socketpair between comm.Init and the launcher's PMI socket (PMI_FD) and relays
// the PMI-1 lines both ways. onRequest (if not nil) sees each request before it goes to the
// launcher; hold (if not nil) sees each reply before it goes to the rank, and delays it (and
// so every later one) until it returns. Call it before comm.Init.
func tap(onRequest func(line string), hold func(line string)) {
	fd, err := strconv.Atoi(os.Getenv("PMI_FD"))
	if err != nil {
		fail("tap: PMI_FD=%q", os.Getenv("PMI_FD"))
	}
	launcher := os.NewFile(uintptr(fd), "pmi-launcher")
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	check(err, "tap: socketpair")
	rank := os.NewFile(uintptr(pair[1]), "pmi-tap")
	os.Setenv("PMI_FD", strconv.Itoa(pair[0])) // comm.Init takes this end over
	go relay(rank, launcher, onRequest)
	go relay(launcher, rank, hold)
}

// relay copies lines from src to dst, showing each to see first, until src ends (then it
// closes dst).
func relay(src, dst *os.File, see func(string)) {
	r := bufio.NewReader(src)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			dst.Close()
			return
		}
		if see != nil {
			see(line)
		}
		if _, err := dst.WriteString(line); err != nil {
			return
		}
	}
}

func isBarrierOut(line string) bool { return strings.HasPrefix(line, "cmd=barrier_out") }

// markBarrier leaves barrier-R once this rank has asked to enter the start-up barrier.
func markBarrier(line string) {
	if strings.HasPrefix(line, "cmd=barrier_in") {
		mark("barrier-"+strconv.Itoa(me), "")
	}
}

// holdBarrierOut holds the first barrier_out until a rank has been killed (never, if none is):
// the launcher has let this rank through the start-up barrier, the rank learns it only once
// the victim is dead, as a slow rank would.
func holdBarrierOut(line string) {
	if isBarrierOut(line) {
		waitKilled()
	}
}

// waitKilled waits until a victim has announced its death in DIER_DIR and is dead.
func waitKilled() {
	for {
		if m, _ := filepath.Glob(filepath.Join(dir, "killed-*")); len(m) > 0 {
			b, err := os.ReadFile(m[0])
			check(err, "read %s", m[0])
			pid, _ := strconv.Atoi(string(b))
			for !dead(pid) {
				time.Sleep(time.Millisecond)
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// dead reports whether pid is gone, or a zombie with no thread left running (a thread group's
// leader shows as a zombie while its other threads still exit, holding the descriptors).
func dead(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) == 0 || f[0] != "Z" && f[0] != "X" {
		return false
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	return err != nil || len(tasks) <= 1
}
