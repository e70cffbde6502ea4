// Package shmname names the /dev/shm file that holds a node segment where memfd_create is
// unavailable. The shared-memory transport creates it and unlinks it once every local rank has
// mapped it; the launcher removes it after a job, in case a rank was killed in between.
package shmname

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Prefix starts every such file name.
const Prefix = "/dev/shm/gorun-"

// Fallback is the file of the segment made by the node's first rank (leaderPid) of job jobID
// (the PMI key-value space name). Other jobs cannot guess it before it exists, and the
// creator opens it with O_EXCL and mode 0600.
func Fallback(jobID string, leaderPid int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", jobID, leaderPid)))
	return Prefix + hex.EncodeToString(h[:12])
}
