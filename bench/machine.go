package bench

import (
	"fmt"
	"runtime"

	"github.com/gorun-hpc/gorun/topology"
	"github.com/klauspost/cpuid/v2"
)

// describeMachine names this machine for reports and tuning files: the CPU model, the CPUs this
// process may use, and whether it runs under a hypervisor.
func describeMachine() string {
	model, cpus := cpuid.CPU.BrandName, runtime.NumCPU()
	if m, err := topology.Discover(); err == nil {
		model, cpus = m.Model, m.Allowed.Count()
	}
	if model == "" {
		model = "unknown CPU"
	}
	s := fmt.Sprintf("%s, %d CPUs", model, cpus)
	if cpuid.CPU.Supports(cpuid.HYPERVISOR) {
		s += ", virtual machine"
	}
	return s
}
