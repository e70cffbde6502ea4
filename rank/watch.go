package rank

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// Ranks that gorun starts on another host (through ssh or a command of the user's) cannot be
// tied to gorun by PR_SET_PDEATHSIG, which works only for a child of the same kernel. Such a
// rank gets GORUN_WATCH=host:port: it connects there, says its rank, and keeps the
// connection open; gorun closes it when the job ends or gorun dies, and the rank then kills
// itself, so it never outlives gorun, as local ranks never do.
//
// The watcher goroutine runs for the life of the process: it has nothing to stop but the
// process.
func watchLauncher(addr string, rank int) error {
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return fmt.Errorf("GORUN_WATCH=%s: %w", addr, err)
	}
	if _, err := conn.Write([]byte(strconv.Itoa(rank) + "\n")); err != nil {
		conn.Close()
		return fmt.Errorf("GORUN_WATCH=%s: %w", addr, err)
	}
	go func() {
		io.Copy(io.Discard, conn) // returns when gorun closes the connection or goes away
		syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
	}()
	return nil
}
