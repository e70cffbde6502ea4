// Command hello is the smallest gorun program: each rank reports who and where it is.
//
//	go run ./cmd/gorun -n 4 ./examples/hello
package main

import (
	"fmt"
	"log"
	"os"
	"runtime"
	"strings"

	"github.com/gorun-hpc/gorun/comm"
)

func main() {
	world, err := comm.Init()
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	host, _ := os.Hostname()
	fmt.Printf("hello from rank %d of %d on %s (pid %d, cpus %s, GOMAXPROCS %d)\n",
		world.Rank(), world.Size(), host, os.Getpid(), allowedCPUs(), runtime.GOMAXPROCS(0))
}

// allowedCPUs reads the CPUs this process may run on, as the kernel reports them.
func allowedCPUs() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
