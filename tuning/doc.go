// Package tuning holds the thresholds and sizes that choose a rank's protocol per message size
// (Params), where they come from (the program, the GORUN_* environment, the tuning file that
// gorun-bench model writes, the built-in defaults: Resolve), the tuning file itself (File,
// ReadFile, WriteFile, DefaultPath) and the bounds every value is checked against
// (SettingError). It decides nothing about protocols: rank turns Params into the transports'
// configurations, and rank.Explain says what they choose.
//
// Nothing here keeps state; every function is safe for concurrent use.
package tuning
