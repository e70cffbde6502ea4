package rank

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// shmNonce is the secret part of the names a node's segment is handed over by
// (shm.Config.Nonce): an HMAC, under the job key, of the job, the node and its first rank's
// pid. Every local rank computes the same value from what it already has (the job key, which
// every rank holds before the start-up barrier, and the cards), so nothing is published for it
// and no barrier is added; another user, without the key, cannot compute it, and seeing one
// node's names (in /proc/net/unix) tells nothing about another's.
func shmNonce(key []byte, jobID, node string, leaderPid int) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("gorun shm nonce\x00" + jobID + "\x00" + node + "\x00" + strconv.Itoa(leaderPid)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}
