// Package topology discovers the machine a rank runs on and decides where
// ranks go on it.
//
// What it answers, and for whom:
//
//   - Discover: CPUs, cores, packages, caches with the CPUs that share them,
//     NUMA nodes, the cache line size, the CPUs this process may use and its
//     cgroup CPU quota. The launcher places ranks with it; the shared-memory
//     transport pads its rings to LineSize; a rank decides whether it may
//     spin with Oversubscribed.
//   - NodeID and ParseProcessMapping: which ranks share a node (and so one
//     shared-memory segment).
//   - Place: each rank's CPU set and GOMAXPROCS, like Open MPI's --map-by
//     and --bind-to.
//   - WriteText and WriteJSON: what `gorun --topology` prints.
//
// Sources. What the CPU reports (vendor, model, features, line size, cache
// sizes) comes from cpuid (github.com/klauspost/cpuid/v2); what the OS
// reports (online CPUs, core and package ids, cache sharing, NUMA nodes)
// from sysfs; the allowed set from sched_getaffinity; the quota from the
// cgroup (v2 cpu.max or v1 cpu.cfs_quota_us). Run it:
//
//	gorun --topology            # the tree, then where sources fell back
//	gorun --topology -n 8 --map-by l3 --json
//
// Fallbacks. Discovery never fails and never panics on what it reads: a
// missing, unreadable or malformed file counts as absent, and the field it
// feeds gets a documented default, recorded in Machine.Sources:
//
//	online CPUs     sysfs online file, else cpuN dirs, else the affinity mask, else 0..runtime.NumCPU()-1
//	cores/packages  one core per CPU, in package 0
//	caches          cpuid sizes, sharing assumed L1/L2 per core and L3 per package; else none
//	cache size      0, meaning unknown
//	line size       cpuid, else sysfs L1 coherency_line_size, else 64 (DefaultLineSize)
//	NUMA            one node 0 holding every CPU
//	allowed CPUs    every online CPU
//	quota           none (0)
//
// Concurrency: the package has no global mutable state. A Machine and the
// placements are plain values, safe for concurrent reads.
package topology
