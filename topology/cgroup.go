package topology

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// schedAffinity returns the CPUs the calling thread may run on. Go starts
// every thread with the process's mask, and the only thread gorun narrows
// (the launcher's, while it forks a bound rank) is locked to one goroutine
// that never calls this, so this is the process's allowed set. Machines
// with more than 1024 CPUs make the fixed-size mask fail with EINVAL; the
// caller then falls back to all online CPUs.
func schedAffinity() (CPUSet, error) {
	var u unix.CPUSet
	if err := unix.SchedGetaffinity(0, &u); err != nil {
		return CPUSet{}, fmt.Errorf("sched_getaffinity: %w", err)
	}
	return CPUSetFromUnix(&u), nil
}

// cgroupQuota returns the tightest CPU bandwidth limit on this process's
// cgroups, in CPUs (quota/period), with the file it came from; 0 when no
// limit is set. fsRoot is "/" in production and a fake tree in tests; every
// absolute path below is read under it.
//
// From the kernel's Documentation/admin-guide/cgroup-v2.rst and
// cgroup-v1/cfs-bandwidth.rst and proc_pid_cgroup(7), proc_pid_mountinfo(5):
//   - /proc/self/cgroup has "hierarchy-id:controllers:path" lines; v2 is the
//     line "0::path", a v1 hierarchy with the cpu controller lists "cpu".
//   - v2: <cgroup>/cpu.max is "max PERIOD" (no limit) or "QUOTA PERIOD" (µs).
//   - v1: <cgroup>/cpu.cfs_quota_us is -1 (no limit) or µs per
//     cpu.cfs_period_us.
//   - A limit on any ancestor also applies, so the walk goes up to the
//     mount's root and keeps the smallest.
//   - The path is relative to the hierarchy's root; /proc/self/mountinfo says
//     where that hierarchy (or part of it, inside a container) is mounted.
func cgroupQuota(fsRoot string) (float64, string, error) {
	data, ok := readText(filepath.Join(fsRoot, "proc", "self", "cgroup"))
	if !ok {
		return 0, "", fmt.Errorf("no readable /proc/self/cgroup")
	}
	v1Path, v2Path := parseProcCgroup(data)
	mi, _ := readText(filepath.Join(fsRoot, "proc", "self", "mountinfo"))
	mounts := parseMountinfo(mi)

	best, src := 0.0, ""
	consider := func(q float64, file string) {
		if q > 0 && (best == 0 || q < best) {
			best, src = q, file
		}
	}
	if v1Path != "" {
		mnt := findMount(mounts, v1Path, func(m mount) bool {
			return m.fsType == "cgroup" && slices.Contains(m.superOpts, "cpu")
		}, "/sys/fs/cgroup/cpu")
		q, file := walkCgroup(fsRoot, mnt, v1Path, readV1Quota)
		consider(q, "cgroup v1 "+file)
	}
	if v2Path != "" {
		mnt := findMount(mounts, v2Path, func(m mount) bool { return m.fsType == "cgroup2" }, "/sys/fs/cgroup")
		q, file := walkCgroup(fsRoot, mnt, v2Path, readV2Quota)
		consider(q, "cgroup v2 "+file)
	}
	if best > 0 {
		src = fmt.Sprintf("%s (%g CPUs)", src, best)
	}
	return best, src, nil
}

// parseProcCgroup returns the cgroup path of the v1 hierarchy that holds the
// cpu controller and the v2 path; "" for a hierarchy that is not there.
func parseProcCgroup(s string) (v1, v2 string) {
	for _, line := range strings.Split(s, "\n") {
		id, rest, ok1 := strings.Cut(line, ":")
		ctrls, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(path, "/") {
			continue
		}
		switch {
		case id == "0" && ctrls == "":
			v2 = path
		case slices.Contains(strings.Split(ctrls, ","), "cpu"):
			v1 = path
		}
	}
	return v1, v2
}

// mount is one /proc/self/mountinfo line, the fields used here.
type mount struct {
	root, point, fsType string
	superOpts           []string
}

// parseMountinfo parses lines of the form
//
//	36 35 98:0 /root /mount/point rw,noatime master:1 - cgroup2 cgroup2 rw,nsdelegate
//
// where a variable number of optional fields precedes the "-". Malformed
// lines are skipped.
func parseMountinfo(s string) []mount {
	var out []mount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			continue
		}
		out = append(out, mount{
			root:      unescapeMount(f[3]),
			point:     unescapeMount(f[4]),
			fsType:    f[sep+1],
			superOpts: strings.Split(f[sep+3], ","),
		})
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// findMount picks the mount of the wanted hierarchy whose root contains
// path (a container may mount only its own subtree), else the first one of
// that hierarchy, else the conventional mount point with the whole
// hierarchy (mountinfo unreadable).
func findMount(ms []mount, path string, want func(mount) bool, conventional string) mount {
	var first *mount
	for i := range ms {
		if !want(ms[i]) {
			continue
		}
		if under(path, ms[i].root) {
			return ms[i]
		}
		if first == nil {
			first = &ms[i]
		}
	}
	if first != nil {
		return *first
	}
	return mount{root: "/", point: conventional}
}

// under reports whether path is root or inside it.
func under(path, root string) bool {
	return root == "/" || path == root || strings.HasPrefix(path, root+"/")
}

// walkCgroup reads the limit of path's cgroup and of each ancestor up to the
// mount point and returns the smallest, with the file that set it. A path
// outside the mount's root (a cgroup namespace hides it) is read at the mount
// point, which is then the process's own cgroup.
func walkCgroup(fsRoot string, mnt mount, path string, read func(dir string) (float64, string)) (float64, string) {
	point := filepath.Clean("/" + mnt.point)
	dir := point
	if p := filepath.Clean("/" + path); under(p, mnt.root) {
		dir = filepath.Join(point, strings.TrimPrefix(p, filepath.Clean(mnt.root)))
	}
	best, file := 0.0, ""
	for {
		if q, f := read(filepath.Join(fsRoot, dir)); q > 0 && (best == 0 || q < best) {
			best, file = q, filepath.Join(dir, f)
		}
		if dir == point || len(dir) <= len(point) {
			return best, file
		}
		dir = filepath.Dir(dir)
	}
}

// readV2Quota reads dir/cpu.max; 0 for "max", missing or malformed.
func readV2Quota(dir string) (float64, string) {
	s, ok := readText(filepath.Join(dir, "cpu.max"))
	if !ok {
		return 0, ""
	}
	f := strings.Fields(s)
	if len(f) != 2 || f[0] == "max" {
		return 0, ""
	}
	return ratio(f[0], f[1]), "cpu.max"
}

// readV1Quota reads dir/cpu.cfs_quota_us over cpu.cfs_period_us; 0 for -1,
// missing or malformed.
func readV1Quota(dir string) (float64, string) {
	q, ok1 := readText(filepath.Join(dir, "cpu.cfs_quota_us"))
	p, ok2 := readText(filepath.Join(dir, "cpu.cfs_period_us"))
	if !ok1 || !ok2 {
		return 0, ""
	}
	return ratio(q, p), "cpu.cfs_quota_us"
}

func ratio(quota, period string) float64 {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0
	}
	return float64(q) / float64(p)
}
