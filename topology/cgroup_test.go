package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree creates files (path → content) under a fresh temporary root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	mountV2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	mountV1 = "23 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n" +
		"31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct\n" +
		"32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory\n"
)

func TestCgroupQuota(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    float64
		source  string // substring of the reported source
		wantErr bool
	}{
		{
			name: "v2 limit on the process's cgroup",
			files: map[string]string{
				"proc/self/cgroup":                       "0::/user.slice/job\n",
				"proc/self/mountinfo":                    mountV2,
				"sys/fs/cgroup/cpu.max":                  "max 100000\n",
				"sys/fs/cgroup/user.slice/cpu.max":       "max 100000\n",
				"sys/fs/cgroup/user.slice/job/cpu.max":   "150000 100000\n",
				"sys/fs/cgroup/user.slice/other/cpu.max": "10000 100000\n",
			},
			want: 1.5, source: "cgroup v2 /sys/fs/cgroup/user.slice/job/cpu.max (1.5 CPUs)",
		},
		{
			name: "v2 tighter limit on an ancestor wins",
			files: map[string]string{
				"proc/self/cgroup":                     "0::/user.slice/job\n",
				"proc/self/mountinfo":                  mountV2,
				"sys/fs/cgroup/user.slice/cpu.max":     "100000 100000\n",
				"sys/fs/cgroup/user.slice/job/cpu.max": "150000 100000\n",
			},
			want: 1, source: "/sys/fs/cgroup/user.slice/cpu.max",
		},
		{
			name: "v2 no limit anywhere",
			files: map[string]string{
				"proc/self/cgroup":                     "0::/user.slice/job\n",
				"proc/self/mountinfo":                  mountV2,
				"sys/fs/cgroup/user.slice/job/cpu.max": "max 100000\n",
			},
		},
		{
			name: "v2 container: the namespace root is mounted, path outside it",
			files: map[string]string{
				"proc/self/cgroup":      "0::/kubepods/pod1/c1\n",
				"proc/self/mountinfo":   "40 30 0:26 /kubepods/pod1/c1 /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
				"sys/fs/cgroup/cpu.max": "250000 100000\n",
			},
			want: 2.5, source: "/sys/fs/cgroup/cpu.max",
		},
		{
			name: "v2 without mountinfo uses /sys/fs/cgroup",
			files: map[string]string{
				"proc/self/cgroup":          "0::/a\n",
				"sys/fs/cgroup/a/cpu.max":   "50000 100000\n",
				"sys/fs/cgroup/a/b/cpu.max": "10000 100000\n", // a child, not an ancestor
			},
			want: 0.5,
		},
		{
			name: "v1 cpu,cpuacct hierarchy",
			files: map[string]string{
				"proc/self/cgroup":                                       "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/x\n0::/\n",
				"proc/self/mountinfo":                                    mountV1,
				"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":             "-1\n",
				"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us":            "100000\n",
				"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us":  "50000\n",
				"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
			},
			want: 0.5, source: "cgroup v1 /sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
		},
		{
			name: "v1 unlimited, like the development VM",
			files: map[string]string{
				"proc/self/cgroup":                    "1:cpu:/\n0::/\n",
				"proc/self/mountinfo":                 "31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "-1\n",
				"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
			},
		},
		{
			name: "malformed limit files count as no limit",
			files: map[string]string{
				"proc/self/cgroup":                   "0::/a\n",
				"proc/self/mountinfo":                mountV2 + "garbage line\n",
				"sys/fs/cgroup/a/cpu.max":            "lots 100000\n",
				"sys/fs/cgroup/cpu.max":              "100000 0\n",
				"sys/fs/cgroup/a/cpu.cfs_quota_us":   "x",
				"sys/fs/cgroup/a/cpu.cfs_period_us":  "y",
				"sys/fs/cgroup/a/unrelated/cpu.max":  "1 1",
				"sys/fs/cgroup/a/cgroup.controllers": "cpu",
			},
		},
		{
			name: "path with .. stays inside the mount",
			files: map[string]string{
				"proc/self/cgroup":        "0::/../../a\n",
				"sys/fs/cgroup/a/cpu.max": "200000 100000\n",
			},
			want: 2,
		},
		{name: "no /proc/self/cgroup", files: map[string]string{}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, src, err := cgroupQuota(writeTree(t, tc.files))
			if (err != nil) != tc.wantErr {
				t.Fatalf("cgroupQuota: err = %v, want error %v", err, tc.wantErr)
			}
			if q != tc.want {
				t.Errorf("quota = %g (%s), want %g", q, src, tc.want)
			}
			if !strings.Contains(src, tc.source) {
				t.Errorf("source = %q, want it to contain %q", src, tc.source)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"37 35 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" +
		"short line\n" +
		"38 35 0:31 / /x rw - cgroup\n" // no source and options
	ms := parseMountinfo(in)
	if len(ms) != 2 {
		t.Fatalf("parsed %d mounts, want 2: %+v", len(ms), ms)
	}
	if ms[0].root != "/mnt1" || ms[0].point != "/mnt two" || ms[0].fsType != "ext3" {
		t.Errorf("first mount = %+v", ms[0])
	}
	if ms[1].fsType != "cgroup2" || ms[1].point != "/sys/fs/cgroup" {
		t.Errorf("second mount = %+v", ms[1])
	}
	for in, want := range map[string]string{`a\040b`: "a b", `a\`: `a\`, `a\04`: `a\04`, `\134`: `\`, `\999`: `\999`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSchedAffinity(t *testing.T) {
	set, err := schedAffinity()
	if err != nil {
		t.Skipf("sched_getaffinity unavailable: %v", err)
	}
	if set.IsEmpty() {
		t.Error("empty affinity mask")
	}
}
