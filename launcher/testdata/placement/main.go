// Command placement is a rank that reports where it runs, as the kernel and
// its Go runtime see it, and the placement variables the launcher set:
//
//	place rank=R cpus=<Cpus_allowed_list> gomaxprocs=G local=LR/LS gorun_cpus=<GORUN_CPUS>
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

func main() {
	cpus, err := allowedCPUs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "placement:", err)
		os.Exit(1)
	}
	fmt.Printf("place rank=%s cpus=%s gomaxprocs=%d local=%s/%s gorun_cpus=%s\n",
		os.Getenv("PMI_RANK"), cpus, runtime.GOMAXPROCS(0),
		os.Getenv("GORUN_LOCAL_RANK"), os.Getenv("GORUN_LOCAL_SIZE"), os.Getenv("GORUN_CPUS"))
}

// allowedCPUs is this process's Cpus_allowed_list from /proc/self/status.
func allowedCPUs() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no Cpus_allowed_list in /proc/self/status")
}
