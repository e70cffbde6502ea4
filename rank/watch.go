package rank

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/internal/pmi"
)

// Ranks that gorun starts on another host (through ssh or a command of the user's) cannot be
// tied to gorun by PR_SET_PDEATHSIG, which works only for a child of the same kernel. Such a
// rank gets GORUN_WATCH=host:port: it connects there, sends one line, "<rank> <token>\n"
// (token: pmi.WatchToken of the job key, which proves the line comes from the job), and
// keeps the connection open; gorun closes it when the job ends or gorun dies, and the rank
// then kills itself, so it never outlives gorun, as local ranks never do.

// watchTimeout bounds connecting to the watch port.
const watchTimeout = 30 * time.Second

// watch opens the watch connection to addr for rank, proving it with key. The watcher
// goroutine runs for the life of the process: it has nothing to stop but the process.
func watch(addr string, rank int, key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("GORUN_WATCH=%s: no job key (GORUN_JOB_KEY) to prove this rank with", addr)
	}
	conn, err := net.DialTimeout("tcp", addr, watchTimeout)
	if err != nil {
		return fmt.Errorf("GORUN_WATCH=%s: %w", addr, err)
	}
	if _, err := conn.Write([]byte(watchLine(rank, key))); err != nil {
		conn.Close()
		return fmt.Errorf("GORUN_WATCH=%s: %w", addr, err)
	}
	go func() {
		io.Copy(io.Discard, conn) // returns when gorun closes the connection or goes away
		syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
	}()
	return nil
}

// watchLine is what a rank sends on its watch connection.
func watchLine(rank int, key []byte) string {
	return strconv.Itoa(rank) + " " + pmi.WatchToken(key, rank) + "\n"
}
