//go:build race

package jobtest

const raceEnabled = true

// Race reports whether the race detector is on (its instrumentation allocates).
const Race = raceEnabled
