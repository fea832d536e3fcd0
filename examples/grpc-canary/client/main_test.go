package main

import "testing"

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		counts map[string]int
		want   string
	}{
		{map[string]int{"v2": 5, "v1": 45}, "v1 ##################..  90%  v2 ##..................  10%   (50 rpcs)"},
		{map[string]int{"v1": 50}, "v1 #################### 100%   (50 rpcs)"},
		{map[string]int{}, "(no rpcs)"},
	} {
		if got := line(tc.counts, 20); got != tc.want {
			t.Errorf("line(%v) =\n%q, want\n%q", tc.counts, got, tc.want)
		}
	}
}
