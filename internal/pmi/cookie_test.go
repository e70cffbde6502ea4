package pmi

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestCookieCreatedOnce(t *testing.T) {
	home := t.TempDir()
	getenv := envOf(map[string]string{"HOME": home})
	const n = 8
	got := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n { // ranks of one node racing to create it
		wg.Go(func() {
			var err error
			if got[i], err = Cookie(getenv); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	path := filepath.Join(home, ".gorun", "cookie")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	di, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("cookie mode %v in a directory of mode %v, want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
	if b, err := hex.DecodeString(string(got[0])); err != nil || len(b) != 32 {
		t.Errorf("cookie %q is not 32 bytes in hex", got[0])
	}
	for i := range got {
		if !bytes.Equal(got[i], got[0]) {
			t.Errorf("caller %d got another cookie", i)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files beside the cookie are left: %v", len(entries)-1, entries)
	}
}

func TestCookieFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "my-cookie")
	os.WriteFile(path, []byte("  a secret of my own choosing\n"), 0o600)
	got, err := Cookie(envOf(map[string]string{"GORUN_COOKIE_FILE": path, "HOME": "/nonexistent"}))
	if err != nil || string(got) != "a secret of my own choosing" {
		t.Errorf("Cookie = %q, %v", got, err)
	}
}

func TestCookieRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(path string) error
		want    string
	}{
		{"readable by group", func(p string) error { return os.WriteFile(p, []byte(strings.Repeat("x", 32)), 0o640) }, "mode"},
		{"writable by others", func(p string) error {
			if err := os.WriteFile(p, []byte(strings.Repeat("x", 32)), 0o600); err != nil {
				return err
			}
			return os.Chmod(p, 0o602)
		}, "mode"},
		{"too short", func(p string) error { return os.WriteFile(p, []byte("short\n"), 0o600) }, "bytes"},
		{"a directory", func(p string) error { return os.Mkdir(p, 0o700) }, "regular"},
		{"another user's", func(p string) error {
			if os.Getuid() != 0 {
				t.Skip("needs root to give the file away")
			}
			if err := os.WriteFile(p, []byte(strings.Repeat("x", 32)), 0o600); err != nil {
				return err
			}
			return os.Chown(p, 65534, 65534)
		}, "owned by uid 65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cookie")
			if err := tc.prepare(path); err != nil {
				t.Fatal(err)
			}
			got, err := Cookie(envOf(map[string]string{"GORUN_COOKIE_FILE": path}))
			if err == nil || !strings.Contains(err.Error(), tc.want) || got != nil {
				t.Errorf("Cookie = %q, %v; want an error about %q", got, err, tc.want)
			}
		})
	}
	if _, err := Cookie(envOf(nil)); err == nil {
		t.Error("no HOME and no GORUN_COOKIE_FILE: no error")
	}
}

func TestTakeJobKey(t *testing.T) {
	key := strings.Repeat("ab", 32)
	var unset []string
	got, err := takeJobKey(envOf(map[string]string{"GORUN_JOB_KEY": key}), nil, func(name, value string) {
		unset = append(unset, name+"="+value)
	})
	if err != nil || hex.EncodeToString(got) != key || len(unset) != 1 || unset[0] != "GORUN_JOB_KEY="+key {
		t.Errorf("takeJobKey = %x, %v; removed %v", got, err, unset)
	}
	// From the process environment: gone once read.
	t.Setenv("GORUN_JOB_KEY", key)
	if got, err := TakeJobKey(os.Getenv, nil); err != nil || hex.EncodeToString(got) != key {
		t.Fatalf("TakeJobKey = %x, %v", got, err)
	}
	if v, ok := os.LookupEnv("GORUN_JOB_KEY"); ok {
		t.Errorf("GORUN_JOB_KEY=%q is still in the environment", v)
	}
	// A getenv of its own leaves the process environment alone.
	t.Setenv("GORUN_JOB_KEY", key)
	other := strings.Repeat("cd", 32)
	if got, err := TakeJobKey(envOf(map[string]string{"GORUN_JOB_KEY": other}), nil); err != nil || hex.EncodeToString(got) != other {
		t.Fatalf("TakeJobKey = %x, %v", got, err)
	}
	if v := os.Getenv("GORUN_JOB_KEY"); v != key {
		t.Errorf("the process environment's key was changed to %q", v)
	}
	// The key read from standard input: "stdin" goes too.
	t.Setenv("GORUN_JOB_KEY", "stdin")
	if got, err := TakeJobKey(os.Getenv, strings.NewReader(key+"\nrest")); err != nil || hex.EncodeToString(got) != key {
		t.Fatalf("TakeJobKey from stdin = %x, %v", got, err)
	}
	if _, ok := os.LookupEnv("GORUN_JOB_KEY"); ok {
		t.Error("GORUN_JOB_KEY=stdin is still in the environment")
	}
}
