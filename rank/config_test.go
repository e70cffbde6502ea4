package rank

import (
	"math"
	"strings"
	"testing"
	"time"
)

// noDefaultTuningFile keeps the user's own tuning file out of a test.
func noDefaultTuningFile(t *testing.T) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// GORUN_SPIN and GORUN_YIELD are clamped, not rejected: a value past the bound is the bound.
func TestSpinAndYieldsClamped(t *testing.T) {
	noDefaultTuningFile(t)
	for _, tc := range []struct {
		name   string
		cfg    Config
		env    map[string]string
		spin   time.Duration
		yields int
	}{
		{"spin an hour", Config{}, map[string]string{"GORUN_SPIN": "1h"}, time.Second, 0},
		{"spin at the bound", Config{}, map[string]string{"GORUN_SPIN": "1s"}, time.Second, 0},
		{"spin zero: never", Config{}, map[string]string{"GORUN_SPIN": "0"}, -1, 0},
		{"spin negative: never", Config{}, map[string]string{"GORUN_SPIN": "-5ms"}, -5 * time.Millisecond, 0},
		{"program's spin", Config{Spin: 24 * time.Hour}, nil, time.Second, 0},
		{"yields a million", Config{}, map[string]string{"GORUN_YIELD": "1000000"}, 0, 10000},
		{"yields beyond int", Config{}, map[string]string{"GORUN_YIELD": "99999999999999999999"}, 0, 10000},
		{"yields far below zero: never", Config{}, map[string]string{"GORUN_YIELD": "-99999999999999999999"}, 0, -1},
		{"yields zero: never", Config{}, map[string]string{"GORUN_YIELD": "0"}, 0, -1},
		{"program's yields", Config{Yields: math.MaxInt}, nil, 0, 10000},
		{"unset", Config{}, nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Getenv = envOf(tc.env)
			got, err := tc.cfg.resolve()
			if err != nil || got.Spin != tc.spin || got.Yields != tc.yields {
				t.Fatalf("spin %v yields %d (%v), want %v and %d", got.Spin, got.Yields, err, tc.spin, tc.yields)
			}
		})
	}
}

func TestConfigOutOfRange(t *testing.T) {
	noDefaultTuningFile(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		env  map[string]string
		want string
	}{
		{"connect timeout zero", Config{}, map[string]string{"GORUN_CONNECT_TIMEOUT": "0"}, "GORUN_CONNECT_TIMEOUT=0: want a duration above 0"},
		{"connect timeout negative", Config{}, map[string]string{"GORUN_CONNECT_TIMEOUT": "-1s"}, "GORUN_CONNECT_TIMEOUT=-1s"},
		{"connect timeout too long", Config{}, map[string]string{"GORUN_CONNECT_TIMEOUT": "25h"}, "at most 24h0m0s"},
		{"connect timeout garbage", Config{}, map[string]string{"GORUN_CONNECT_TIMEOUT": "60"}, "GORUN_CONNECT_TIMEOUT=60"},
		{"program's connect timeout negative", Config{ConnectTimeout: -time.Second}, nil, "Config.ConnectTimeout=-1s"},
		{"program's connect timeout too long", Config{ConnectTimeout: 100 * time.Hour}, nil, "Config.ConnectTimeout=100h0m0s"},
		{"spin garbage", Config{}, map[string]string{"GORUN_SPIN": "fast"}, "GORUN_SPIN=fast: want a Go duration"},
		{"yield garbage", Config{}, map[string]string{"GORUN_YIELD": "many"}, "GORUN_YIELD=many: want a number"},
		{"program's eager limit negative", Config{EagerLimit: -1}, nil, "Tuning.SockEager=-1"},
		{"program's eager limit too big", Config{EagerLimit: 1 << 30}, nil, "Tuning.SockEager=1073741824"},
		{"transport", Config{}, map[string]string{"GORUN_TRANSPORT": "rdma"}, `transport "rdma"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Getenv = envOf(tc.env)
			if _, err := tc.cfg.resolve(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error with %q", err, tc.want)
			}
		})
	}
}
