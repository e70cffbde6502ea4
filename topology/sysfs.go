package topology

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The sysfs facts read here and their meaning, from the kernel's
// Documentation/ABI/stable/sysfs-devices-system-cpu,
// Documentation/admin-guide/cputopology.rst and
// Documentation/ABI/stable/sysfs-devices-node:
//
//	devices/system/cpu/online                      CPUs the scheduler may use, list form
//	devices/system/cpu/cpuN/online                 "0" when cpuN is offline (absent for cpu0)
//	devices/system/cpu/cpuN/topology/core_id       core of cpuN, unique within its package
//	devices/system/cpu/cpuN/topology/physical_package_id   socket of cpuN (-1 if unknown)
//	devices/system/cpu/cpuN/cache/indexM/level     1, 2, 3…
//	devices/system/cpu/cpuN/cache/indexM/type      Data, Instruction or Unified
//	devices/system/cpu/cpuN/cache/indexM/size      e.g. "48K" (kernel prints KiB with a K)
//	devices/system/cpu/cpuN/cache/indexM/shared_cpu_list   CPUs sharing this instance
//	devices/system/cpu/cpuN/cache/indexM/coherency_line_size   bytes
//	devices/system/node/nodeN/cpulist              CPUs local to NUMA node N
//
// Every reader below returns ok=false for a missing, unreadable or malformed
// file, and the caller falls back: a corrupt file is the same as no file.

// maxSysfsFile bounds a read: real sysfs attributes are at most a page, and a
// fake tree must not make discovery read a huge file.
const maxSysfsFile = 64 << 10

func readText(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSysfsFile))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

func readInt(path string) (int, bool) {
	s, ok := readText(path)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false
	}
	return n, true
}

func readCPUSet(path string) (CPUSet, bool) {
	s, ok := readText(path)
	if !ok {
		return CPUSet{}, false
	}
	set, err := ParseCPUSet(s)
	if err != nil {
		return CPUSet{}, false
	}
	return set, true
}

// readSize parses a sysfs cache size: a decimal number with an optional K, M
// or G suffix (powers of 1024), e.g. "48K". It returns bytes.
func readSize(path string) (int64, bool) {
	s, ok := readText(path)
	if !ok || s == "" {
		return 0, false
	}
	shift := 0
	switch s[len(s)-1] {
	case 'K', 'k':
		shift = 10
	case 'M', 'm':
		shift = 20
	case 'G', 'g':
		shift = 30
	}
	if shift > 0 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)>>shift {
		return 0, false
	}
	return n << shift, true
}

// indexedDirs returns N for each entry "<prefix>N" of dir (e.g. cpu0, node1),
// ascending. Entries like "cpufreq" or "cpu01" are not ids and are skipped.
func indexedDirs(dir, prefix string) []int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var ids []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rest == "" {
			continue
		}
		id, err := parseID(rest)
		if err != nil || strconv.Itoa(id) != rest {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func cpuPath(cpuDir string, cpu int, elem ...string) string {
	return filepath.Join(append([]string{cpuDir, "cpu" + strconv.Itoa(cpu)}, elem...)...)
}

// onlineFromDirs derives the online set from the cpuN directories when the
// online file is unusable: every cpuN whose own online file does not say 0.
func onlineFromDirs(cpuDir string) CPUSet {
	var b setBuilder
	for _, id := range indexedDirs(cpuDir, "cpu") {
		if v, ok := readInt(cpuPath(cpuDir, id, "online")); ok && v == 0 {
			continue
		}
		_ = b.add(id, id) // parseID bounded id
	}
	return b.set()
}

// cacheIndex is one cpuN/cache/indexM directory as read.
type cacheIndex struct {
	level    int
	typ      string
	size     int64 // 0: unknown
	lineSize int   // 0: unknown
	shared   CPUSet
}

// readCacheIndexes reads every cache index of cpu. An index without a usable
// level cannot be placed in the hierarchy and is skipped; other missing
// fields get defaults (type Unified, size 0, shared = the CPU itself).
func readCacheIndexes(cpuDir string, cpu int) []cacheIndex {
	dir := cpuPath(cpuDir, cpu, "cache")
	var out []cacheIndex
	for _, idx := range indexedDirs(dir, "index") {
		p := func(name string) string { return filepath.Join(dir, "index"+strconv.Itoa(idx), name) }
		level, ok := readInt(p("level"))
		if !ok || level < 1 || level > 9 {
			continue
		}
		ci := cacheIndex{level: level, typ: CacheUnified}
		if t, ok := readText(p("type")); ok && (t == CacheData || t == CacheInstruction) {
			ci.typ = t
		}
		ci.size, _ = readSize(p("size"))
		if ls, ok := readInt(p("coherency_line_size")); ok && ls > 0 && ls <= 1<<16 {
			ci.lineSize = ls
		}
		ci.shared, _ = readCPUSet(p("shared_cpu_list"))
		out = append(out, ci)
	}
	return out
}
