package shmname

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFileHasASecretPart(t *testing.T) {
	base := Fallback("gorun_7", 100)
	if got := File("gorun_7", 100, ""); got != base {
		t.Errorf("File without a nonce = %q, want Fallback's %q", got, base)
	}
	a, b := File("gorun_7", 100, "n1"), File("gorun_7", 100, "n2")
	if a == b || !strings.HasPrefix(a, base+"-") || !strings.HasPrefix(b, base+"-") {
		t.Errorf("File with nonces n1, n2 = %q, %q: want two names extending %q", a, b, base)
	}
	if odd := File("gorun_7", 100, "../../etc/x\x00"); strings.Contains(odd[len(Prefix):], "/") || strings.ContainsRune(odd, 0) {
		t.Errorf("a nonce with path characters made %q", odd)
	}
	if File("gorun_7", 101, "n1") == a || File("gorun_8", 100, "n1") == a {
		t.Error("another leader or job got the same name")
	}
}

func TestFindAndRemoveEveryNonce(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Base(Fallback("gorun_7", 100))
	other := filepath.Base(Fallback("gorun_7", 101))
	mk := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk(base)
	mk(filepath.Base(File("gorun_7", 100, "n1")))
	mk(other)
	mk(base + "x") // not ours: no dash
	if err := os.Symlink("/nonexistent", filepath.Join(dir, base+"-link")); err != nil {
		t.Fatal(err)
	}
	if found := findIn(dir, base); len(found) != 3 {
		t.Errorf("found %q, want the plain name, the nonce's and the link", found)
	}
	for _, p := range findIn(dir, base) {
		removeOwn(p)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{base + "-link", base + "x", other}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left %q, want %q", left, want)
	}
}
