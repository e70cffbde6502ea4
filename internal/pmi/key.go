package pmi

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// JobKey returns the job secret that gorun passed, or nil: GORUN_JOB_KEY in hex, or, when it
// says "stdin", the first line of standard input. gorun puts the key of a rank it starts on
// another host there rather than on the launch command's command line, where every user of
// both machines could read it with ps; the rest of standard input is the program's.
func JobKey(getenv func(string) string, stdin io.Reader) ([]byte, error) {
	v := getenv(jobKeyVar)
	if v == "stdin" {
		line, err := readLine(stdin, 256)
		if err != nil {
			return nil, fmt.Errorf("read the job key from standard input: %w", err)
		}
		v = line
	}
	if v == "" {
		return nil, nil
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < 16 {
		return nil, errors.New("GORUN_JOB_KEY is not a hex key of at least 16 bytes")
	}
	return key, nil
}

// TakeJobKey is JobKey for a rank's start-up: once read, GORUN_JOB_KEY is removed from the
// process environment when that is where getenv found it (it holds the value read), so that
// the processes the rank starts do not inherit the key. (The kernel's copy of the initial
// environment, /proc/PID/environ, is readable only by the same user and keeps it.)
func TakeJobKey(getenv func(string) string, stdin io.Reader) ([]byte, error) {
	return takeJobKey(getenv, stdin, unsetIfHeld)
}

// takeJobKey is TakeJobKey with the removal replaceable, for tests.
func takeJobKey(getenv func(string) string, stdin io.Reader, unset func(name, value string)) ([]byte, error) {
	v := getenv(jobKeyVar)
	key, err := JobKey(func(name string) string {
		if name == jobKeyVar {
			return v
		}
		return getenv(name)
	}, stdin)
	if v != "" {
		unset(jobKeyVar, v)
	}
	return key, err
}

// unsetIfHeld removes name from the process environment if it holds value.
func unsetIfHeld(name, value string) {
	if v, ok := os.LookupEnv(name); ok && v == value {
		os.Unsetenv(name)
	}
}

// jobKeyVar is where gorun passes the job key.
const jobKeyVar = "GORUN_JOB_KEY"

// ConnectWithKey is Connect for a rank that holds the job's key (JobKey): joining over TCP
// (PMI_PORT) it proves it with PortToken, as gorun's server requires.
func ConnectWithKey(getenv func(string) string, key []byte) (*Client, error) {
	if getenv("PMI_FD") == "" && getenv("PMI_PORT") != "" && len(key) > 0 {
		id, _ := strconv.Atoi(getenv("PMI_ID"))
		return DialPort(getenv, PortToken(key, id))
	}
	return Connect(getenv)
}

// readLine reads up to a newline one byte at a time, so that nothing after it is consumed.
func readLine(r io.Reader, limit int) (string, error) {
	var b [1]byte
	var line []byte
	for len(line) < limit {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
	return "", errors.New("line too long")
}
