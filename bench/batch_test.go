package bench

import (
	"testing"
	"time"
)

func TestExpectedWait(t *testing.T) {
	us := time.Microsecond
	for _, tc := range []struct {
		s    batchSetting
		p    time.Duration
		want time.Duration
	}{
		{batchSetting{}, 10 * us, 0},
		{batchSetting{Limit: "64", Flush: 100 * us}, 10 * us, 55 * us}, // 10 per batch: 100 - 45
		{batchSetting{Limit: "4", Flush: 100 * us}, 10 * us, 15 * us},  // closed by A: 0..30 wait 30..0
		{batchSetting{Limit: "100000", Flush: 10 * time.Millisecond}, us, 10*time.Millisecond - 4999500*time.Nanosecond},
		{batchSetting{Limit: "64", Flush: 10 * time.Millisecond}, us, 31500 * time.Nanosecond},
		{batchSetting{Limit: "4K", Flush: 20 * us}, 10 * us, 15 * us}, // a limit in bytes: timeout decides
	} {
		if got := expectedWait(tc.s, tc.p); got != tc.want {
			t.Errorf("expectedWait(%v, %v) = %v, want %v", tc.s, tc.p, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want batchSetting
		bad  bool
	}{
		{"off", batchSetting{}, false},
		{"16/20us", batchSetting{Limit: "16", Flush: 20 * us}, false},
		{"16", batchSetting{}, true},
		{"16/0s", batchSetting{}, true},
		{"/20us", batchSetting{}, true},
	} {
		got, err := ParseBatchSetting(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseBatchSetting(%q) = %v, %v", tc.in, got, err)
		}
	}
}
