package topology

import "github.com/klauspost/cpuid/v2"

// cpuFacts is what the CPU itself reports through the cpuid instruction.
// Discovery takes it as a value so tests can feed fixed facts next to a fake
// sysfs tree and stay independent of the machine they run on.
type cpuFacts struct {
	vendor, brand string
	family, model int
	lineSize      int      // 0: unknown
	l1d, l1i      int64    // bytes per instance; <= 0: unknown
	l2, l3        int64    // bytes per instance; <= 0: unknown
	features      []string // names from featureNames that the CPU has
}

// featureNames are the flags worth knowing for messaging and reductions:
// vector widths the reduction kernels may assume, and fast string moves for
// copies. The names are cpuid's, so they are stable across releases.
var featureNames = []cpuid.FeatureID{
	cpuid.SSE42, cpuid.POPCNT, cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.BMI2,
	cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL, cpuid.ERMS, cpuid.FSRM,
	cpuid.ASIMD, cpuid.SVE,
}

// cpuidFacts reads the facts of the CPU this process runs on. cpuid reports
// -1 or 0 for what it cannot detect; those become "unknown" here.
func cpuidFacts() cpuFacts {
	c := &cpuid.CPU
	f := cpuFacts{
		vendor:   c.VendorID.String(),
		brand:    c.BrandName,
		family:   c.Family,
		model:    c.Model,
		lineSize: max(c.CacheLine, 0),
		l1d:      int64(max(c.Cache.L1D, 0)),
		l1i:      int64(max(c.Cache.L1I, 0)),
		l2:       int64(max(c.Cache.L2, 0)),
		l3:       int64(max(c.Cache.L3, 0)),
	}
	if c.VendorID == cpuid.VendorUnknown && c.VendorString != "" {
		f.vendor = c.VendorString
	}
	for _, id := range featureNames {
		if c.Supports(id) {
			f.features = append(f.features, id.String())
		}
	}
	return f
}

// size returns cpuid's size for a cache of the given level and type, 0 if
// cpuid does not know it.
func (f cpuFacts) size(level int, typ string) int64 {
	switch {
	case level == 1 && typ == CacheData:
		return max(f.l1d, 0)
	case level == 1 && typ == CacheInstruction:
		return max(f.l1i, 0)
	case level == 2:
		return max(f.l2, 0)
	case level == 3:
		return max(f.l3, 0)
	}
	return 0
}

// cachesFromCPUID builds cache instances when sysfs has no cache directories
// (containers, some VMs). cpuid gives sizes but not which OS CPUs share an
// instance, so sharing is assumed: L1 and L2 per core, L3 per package — true
// of most x86 parts, wrong for e.g. AMD parts with several L3s per package.
// Levels cpuid does not know are left out rather than invented.
func cachesFromCPUID(f cpuFacts, pkgs []Package, lineSize int) []Cache {
	var out []Cache
	for _, p := range pkgs {
		if f.l3 > 0 {
			out = append(out, Cache{Level: 3, Type: CacheUnified, SizeBytes: f.l3, LineSize: lineSize, SharedCPUs: p.CPUs})
		}
		for _, c := range p.Cores {
			if f.l2 > 0 {
				out = append(out, Cache{Level: 2, Type: CacheUnified, SizeBytes: f.l2, LineSize: lineSize, SharedCPUs: c.CPUs})
			}
			if f.l1d > 0 {
				out = append(out, Cache{Level: 1, Type: CacheData, SizeBytes: f.l1d, LineSize: lineSize, SharedCPUs: c.CPUs})
			}
			if f.l1i > 0 {
				out = append(out, Cache{Level: 1, Type: CacheInstruction, SizeBytes: f.l1i, LineSize: lineSize, SharedCPUs: c.CPUs})
			}
		}
	}
	return out
}
