package pmi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Cookie returns the user's secret for gorun's own rendezvous across nodes (Auth.Secret),
// as Erlang's distribution keeps one: the contents of the file GORUN_COOKIE_FILE names,
// else of $HOME/.gorun/cookie, with surrounding white space trimmed. When the file does not
// exist it is created, mode 0600 in a directory of mode 0700, holding 32 random bytes in
// hex; ranks of one node that race to create it all end up with the one that was linked
// into place first. A cookie that is not a regular file owned by this user, whose mode lets
// group or others read or write it, or shorter than 16 bytes is refused. Every node of a
// job needs the same file: a shared home directory has it; otherwise copy it.
func Cookie(getenv func(string) string) ([]byte, error) {
	path := getenv("GORUN_COOKIE_FILE")
	if path == "" {
		home := getenv("HOME")
		if home == "" {
			return nil, errors.New("pmi: no cookie: set GORUN_COOKIE_FILE, HOME or GORUN_JOB_KEY")
		}
		path = filepath.Join(home, ".gorun", "cookie")
	}
	secret, err := readCookie(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err = createCookie(path); err == nil {
			secret, err = readCookie(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pmi: cookie %s: %w", path, err)
	}
	return secret, nil
}

// maxCookie bounds what readCookie reads.
const maxCookie = 4096

// readCookie reads and checks the cookie at path. The checks are on the file opened
// (fstat), not on the name.
func readCookie(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case !ok:
		return nil, errors.New("no owner to check")
	case int(st.Uid) != os.Getuid():
		return nil, fmt.Errorf("owned by uid %d, not by this user (uid %d)", st.Uid, os.Getuid())
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("mode %v lets other users read or write it: chmod 600 it", fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCookie+1))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 || len(b) > maxCookie {
		return nil, fmt.Errorf("%d bytes: want 16 to %d", len(b), maxCookie)
	}
	return b, nil
}

// createCookie writes a fresh cookie to a temporary file beside path and links it into
// place, which fails if another process got there first (its cookie then stands).
func createCookie(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".cookie-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	secret := make([]byte, 32)
	rand.Read(secret)
	_, err = f.WriteString(hex.EncodeToString(secret) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
