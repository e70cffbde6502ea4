//go:build race

package harness

// Race reports whether the race detector is on. Programs builds with it then, and tests skip
// what it distorts (its instrumentation allocates).
const Race = true
