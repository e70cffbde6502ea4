// Command shmleak stands in for a rank killed while its node segment still has a name in
// /dev/shm: it creates the fallback segment file the way the shared-memory transport would,
// then dies by SIGKILL before unlinking it.
package main

import (
	"os"
	"syscall"

	"github.com/gorun-hpc/gorun/internal/shmname"
)

func main() {
	path := shmname.Fallback("gorun_"+os.Getenv("GORUN_JOBID"), os.Getpid())
	if err := os.WriteFile(path, []byte("segment"), 0o600); err != nil {
		os.Exit(2)
	}
	os.Stdout.WriteString(path + "\n")
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
}
