package rank

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gorun-hpc/gorun/tuning"
)

// Config chooses how a rank talks to its peers. The zero value means the defaults, with the
// environment (GORUN_*) filling what is not set.
type Config struct {
	// Transport forces the path to peers: "auto" (shared memory within a node, TCP between
	// nodes), "tcp" (TCP to every peer), "unix" (Unix-domain sockets within a node, TCP between
	// nodes), "shm" (as auto). Env: GORUN_TRANSPORT.
	Transport string
	// EagerLimit is the largest message sockets send eagerly; larger ones use a rendezvous.
	// Env: GORUN_EAGER_LIMIT (bytes). Same as Tuning.SockEager.
	EagerLimit int
	// Spin is how long a waiting rank polls before it yields or sleeps. Zero: the default,
	// which is to spin (10ms) when the node has a CPU for every local rank and never when it
	// is oversubscribed. Negative: never spin. Env: GORUN_SPIN (a Go duration; 0 = never).
	// Longer than maxSpin (1s) is clamped to it, from the program or the environment: a rank
	// that spins longer only burns a CPU.
	Spin time.Duration
	// Yields is how many times a waiting rank polls and yields its CPU before it sleeps.
	// Zero: the default, 32 on an oversubscribed node and none otherwise. Negative: never.
	// Env: GORUN_YIELD. More than maxYields (10000) is clamped to it.
	Yields int
	// ConnectTimeout bounds the start-up exchange with peers. Env: GORUN_CONNECT_TIMEOUT (a
	// Go duration). Zero: the default, 60s; otherwise above 0 and at most maxConnectTimeout
	// (24h), else resolve fails.
	ConnectTimeout time.Duration
	// Tuning chooses protocols by size; zero fields: environment, then tuning file, then
	// built-in defaults (tuning.Resolve).
	Tuning tuning.Params
	// Getenv reads the environment (os.Getenv when nil); tests substitute their own.
	Getenv func(string) string
}

const (
	defaultConnectTimeout = 60 * time.Second

	// Clamps and bounds (see the fields).
	maxSpin           = time.Second
	maxYields         = 10000
	maxConnectTimeout = 24 * time.Hour
)

// resolve fills unset fields from the environment and the defaults, and validates the result.
func (c Config) resolve() (Config, error) {
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	env := c.Getenv
	if c.Transport == "" {
		c.Transport = env("GORUN_TRANSPORT")
	}
	switch c.Transport {
	case "":
		c.Transport = "auto"
	case "auto", "tcp", "unix", "shm":
	default:
		return c, fmt.Errorf("transport %q: want auto, shm, unix or tcp", c.Transport)
	}
	if c.EagerLimit != 0 {
		c.Tuning.SockEager = c.EagerLimit // checked with the tuning
	}
	var err error
	if c.Tuning, err = tuning.Resolve(c.Tuning, env); err != nil {
		return c, err
	}
	if c.Spin == 0 {
		if v := env("GORUN_SPIN"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return c, &tuning.SettingError{Name: "GORUN_SPIN", Value: v, Want: "a Go duration (0 or negative: never spin)"}
			}
			if d == 0 {
				d = -1
			}
			c.Spin = d
		}
	}
	c.Spin = min(c.Spin, maxSpin)
	if c.Yields == 0 {
		if v := env("GORUN_YIELD"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				// Atoi fails on a number out of int's range too: clamp that like any other.
				if !errors.Is(err, strconv.ErrRange) {
					return c, &tuning.SettingError{Name: "GORUN_YIELD", Value: v, Want: "a number (0 or negative: never yield)"}
				}
				n = maxYields
				if v[0] == '-' {
					n = -1
				}
			}
			if n == 0 {
				n = -1
			}
			c.Yields = n
		}
	}
	c.Yields = min(c.Yields, maxYields)
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = defaultConnectTimeout
		if v := env("GORUN_CONNECT_TIMEOUT"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > maxConnectTimeout {
				return c, &tuning.SettingError{Name: "GORUN_CONNECT_TIMEOUT", Value: v, Want: "a duration above 0 and at most " + maxConnectTimeout.String()}
			}
			c.ConnectTimeout = d
		}
	} else if c.ConnectTimeout < 0 || c.ConnectTimeout > maxConnectTimeout {
		return c, &tuning.SettingError{Name: "Config.ConnectTimeout", Value: c.ConnectTimeout.String(), Want: "0 (the default) or a duration above 0 and at most " + maxConnectTimeout.String()}
	}
	return c, nil
}
