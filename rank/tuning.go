package rank

import (
	"fmt"
	"strconv"
)

// Tuning holds the thresholds and sizes that choose a protocol per message size. Zero fields
// mean the built-in defaults (measured on the machine named in docs/benchmarks.md); the
// environment overrides them (the GORUN_* names below).
type Tuning struct {
	SockEager int // sockets: largest eager message (GORUN_EAGER_LIMIT)
	ShmEager  int // shared memory: largest eager message (GORUN_SHM_EAGER)
	ShmRing   int // bytes of each ring's record area (GORUN_SHM_RING)
	ShmBulk   int // bytes of each bulk pipe (GORUN_SHM_BULK)
	ShmChunk  int // bytes per step of the pipelined copy (GORUN_SHM_CHUNK)
	// CMA: "auto" (single copy where it pays: for large messages on an oversubscribed node,
	// where the pipelined copy would need both ranks on a CPU at once), "on" (every
	// rendezvous from CMAMin up), "off" (never; also skips the probe). GORUN_CMA.
	CMA    string
	CMAMin int // GORUN_CMA_MIN: smallest message sent by single copy
	// Summary: above this many local peers a receiver reads its summary bitmap instead of
	// scanning every ring (GORUN_SHM_SUMMARY_ABOVE).
	Summary int
	// ShmFallback forces the /dev/shm file instead of memfd_create (GORUN_SHM_FALLBACK=1).
	ShmFallback bool
}

func (t *Tuning) fromEnv(env func(string) string) error {
	ints := []struct {
		name string
		dst  *int
	}{
		{"GORUN_EAGER_LIMIT", &t.SockEager},
		{"GORUN_SHM_EAGER", &t.ShmEager},
		{"GORUN_SHM_RING", &t.ShmRing},
		{"GORUN_SHM_BULK", &t.ShmBulk},
		{"GORUN_SHM_CHUNK", &t.ShmChunk},
		{"GORUN_CMA_MIN", &t.CMAMin},
		{"GORUN_SHM_SUMMARY_ABOVE", &t.Summary},
	}
	for _, f := range ints {
		v := env(f.name)
		if v == "" || *f.dst != 0 {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%s=%q: want a number of bytes", f.name, v)
		}
		*f.dst = n
	}
	if t.CMA == "" {
		t.CMA = env("GORUN_CMA")
	}
	switch t.CMA {
	case "":
		t.CMA = "auto"
	case "auto", "on", "off":
	default:
		return fmt.Errorf("GORUN_CMA=%q: want auto, on or off", t.CMA)
	}
	if env("GORUN_SHM_FALLBACK") == "1" {
		t.ShmFallback = true
	}
	return nil
}
