package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary act as the load client when the benchmark
// re-executes it, as the real binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childFlag {
		if err := runChild(os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole tool on a small mesh in every mode, so it cannot
// rot: every stream must converge, the change must reach exactly the
// affected streams, and delta must send only the changed resources.
func TestSmoke(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"scoped-delta", []string{"-mode", "delta"}},
		{"scoped-sotw", []string{"-mode", "sotw"}},
		{"unscoped-delta-proxyless", []string{"-mode", "delta", "-unscoped", "-proxyless-every", "3", "-conns", "4"}},
		{"unscoped-sotw-proxyless", []string{"-mode", "sotw", "-unscoped", "-proxyless-every", "3"}},
		{"scoped-sotw-apply", []string{"-mode", "sotw", "-change-via", "apply"}},
		{"unscoped-delta-apply", []string{"-mode", "delta", "-unscoped", "-change-via", "apply"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &errb}
			args := append([]string{"-services", "20", "-streams", "10", "-timeout", "20s", "-quiet", "100ms"}, tc.args...)
			if err := m.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatalf("run: %v\nstdout: %s\nstderr: %s", err, out.String(), errb.String())
			}
			var r Result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
			}
			check := func(ok bool, what string) {
				t.Helper()
				if !ok {
					t.Errorf("%s\n%s", what, out.String())
				}
			}
			check(r.Converged == 10, "not every stream converged")
			check(r.FullConvergenceMS > 0 && r.FullConvergenceMS < float64((20*time.Second).Milliseconds()), "full convergence time not sane")
			check(r.ResourcesPerProxy > 10, "too few resources per stream")
			check(r.BytesSentFull > 0 && r.BytesSentChange > 0, "server counted no bytes sent")
			check(r.ChangeStreamsExpected > 0 && r.ChangeStreams == r.ChangeStreamsExpected, "change did not reach the affected streams")
			check(r.UnaffectedPushes == 0, "a stream the change does not concern got a push")
			check(r.ChangeP50MS > 0 && r.ChangeP50MS <= r.ChangeP99MS, "change percentiles not sane")
			// SotW too: a weight edit changes a route configuration, and
			// SotW RDS carries only the changed ones.
			check(r.ChangeResourcesPerStream == r.ChangeResourcesExpected, "sent more than the changed resources")
			if r.ChangeVia == "dir" {
				// Timed from the file write: pickup comes first, so every
				// figure is at least its from-Apply counterpart.
				check(r.ChangePickupMS > 0 && r.ChangeWatchMS > 0 && r.ChangeStepsMS["render"] > 0 && r.ChangeWriteP50MS >= r.ChangeP50MS && r.ChangeWriteMaxMS >= r.ChangeMaxMS &&
					r.ChangeWriteP99MS >= r.ChangePickupMS, "change times from the file write not sane")
			} else {
				check(r.ChangeWriteP99MS == 0 && r.ChangePickupMS == 0, "change via apply reported write figures")
			}
			check(r.CPUSeconds > 0 && r.PeakRSSMB > 0 && r.ClientPeakRSSMB > 0, "resource figures missing")
			check(r.StreamErrors == 0, "streams failed")
		})
	}
}

// TestFlags rejects bad input with a usage error.
func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "rest"},
		{"-services", "0"},
		{"-services", "10", "-change", "10"},
		{"-change-via", "git"},
		{"extra"},
	} {
		var errb bytes.Buffer
		m := &Main{Stdout: &bytes.Buffer{}, Stderr: &errb}
		if err := m.ParseFlags(args); err == nil {
			t.Errorf("ParseFlags(%q) accepted", args)
		}
	}
}
