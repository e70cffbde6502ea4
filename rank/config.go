package rank

import (
	"fmt"
	"os"
	"strconv"
	"time"
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
	Spin time.Duration
	// Yields is how many times a waiting rank polls and yields its CPU before it sleeps.
	// Zero: the default, 32 on an oversubscribed node and none otherwise. Negative: never.
	// Env: GORUN_YIELD.
	Yields int
	// ConnectTimeout bounds the start-up exchange with peers. Env: GORUN_CONNECT_TIMEOUT.
	ConnectTimeout time.Duration
	// Tuning chooses protocols by size; zero fields: environment, then built-in defaults.
	Tuning Tuning
	// Getenv reads the environment (os.Getenv when nil); tests substitute their own.
	Getenv func(string) string
}

const (
	defaultSpin           = 10 * time.Millisecond
	mixedSpin             = 50 * time.Microsecond
	defaultYields         = 32
	defaultConnectTimeout = 60 * time.Second
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
		c.Tuning.SockEager = c.EagerLimit
	}
	var err error
	if c.Tuning, err = ResolveTuning(c.Tuning, env); err != nil {
		return c, err
	}
	if c.Spin == 0 {
		if v := env("GORUN_SPIN"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return c, fmt.Errorf("GORUN_SPIN=%q: %w", v, err)
			}
			if d == 0 {
				d = -1
			}
			c.Spin = d
		}
	}
	if c.Yields == 0 {
		if v := env("GORUN_YIELD"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("GORUN_YIELD=%q: want a number", v)
			}
			if n == 0 {
				n = -1
			}
			c.Yields = n
		}
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = defaultConnectTimeout
		if v := env("GORUN_CONNECT_TIMEOUT"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return c, fmt.Errorf("GORUN_CONNECT_TIMEOUT=%q: want a positive duration", v)
			}
			c.ConnectTimeout = d
		}
	}
	return c, nil
}
