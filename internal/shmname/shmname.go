// Package shmname names the /dev/shm file that holds a node segment where memfd_create is
// unavailable. The shared-memory transport creates it and unlinks it once every local rank has
// mapped it; the launcher removes it after a job (Remove), in case a rank was killed in
// between.
package shmname

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Prefix starts every such file name.
const Prefix = "/dev/shm/gorun-"

// File is the file of the segment made by the node's first rank (leaderPid) of job jobID (the
// PMI key-value space name), with nonce the node's secret (shm.Config.Nonce): the name is
// Fallback(jobID, leaderPid), a dash and a hash of the nonce. Another user can compute the
// first part (the job id and the pid are visible to all), but not the second, so cannot
// create the file first and make the creator's O_EXCL fail. Hashing makes any nonce a safe
// file name. An empty nonce gives Fallback's name.
func File(jobID string, leaderPid int, nonce string) string {
	if nonce == "" {
		return Fallback(jobID, leaderPid)
	}
	h := sha256.Sum256([]byte("gorun-shm-file\x00" + nonce))
	return Fallback(jobID, leaderPid) + "-" + hex.EncodeToString(h[:12])
}

// Fallback is the part of File's name that depends only on the job and the leader's pid, and
// the whole name when there is no nonce.
func Fallback(jobID string, leaderPid int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", jobID, leaderPid)))
	return Prefix + hex.EncodeToString(h[:12])
}

// Find lists the files in /dev/shm that File may have named for jobID and leaderPid, whatever
// the nonce: Fallback's name and any name that extends it with a dash. Whose they are is not
// checked.
func Find(jobID string, leaderPid int) []string {
	stem := Fallback(jobID, leaderPid)
	return findIn(filepath.Dir(stem), filepath.Base(stem))
}

// Remove removes what Find lists, where it is a regular file of this user; anything else
// (another user's file, a link) is left alone. It is for the launcher, once the job's ranks on
// this machine are all gone.
func Remove(jobID string, leaderPid int) {
	for _, path := range Find(jobID, leaderPid) {
		removeOwn(path)
	}
}

// findIn is Find in directory dir, for the files named base or base-*.
func findIn(dir, base string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var paths []string
	for _, e := range ents {
		if name := e.Name(); name == base || strings.HasPrefix(name, base+"-") {
			paths = append(paths, filepath.Join(dir, name))
		}
	}
	return paths
}

// removeOwn removes path if it is a regular file this user owns.
func removeOwn(path string) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		return
	}
	os.Remove(path)
}
