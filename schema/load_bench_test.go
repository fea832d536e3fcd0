package schema

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gitmesh/gitmesh/internal/meshgen"
)

// BenchmarkLoad loads generated meshes. peak-heap-MB is the largest live
// heap (objects, including not yet collected garbage) sampled while loading.
//
//	go test ./schema -run XXX -bench BenchmarkLoad -benchtime 3x
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		fsys := meshgen.Generate(n, meshgen.Options{Seed: 1})
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			peak := samplePeakHeap()
			defer cpuMetric(b)()
			for i := 0; i < b.N; i++ {
				opts := benchOptions()
				opts.Timeout = time.Minute
				m, diags, err := Load(context.Background(), fsys, opts)
				if err != nil || len(diags) > 0 {
					b.Fatalf("load: %v %v", err, diags)
				}
				if len(m.Services) != n {
					b.Fatalf("got %d services, want %d", len(m.Services), n)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
			if rss := peakRSS(); rss > 0 {
				// VmHWM is the process's high-water mark: meaningful when
				// one size runs alone (-bench 'Load/services=10000$').
				b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
			}
		})
	}
}

// samplePeakHeap samples the live heap (runtime/metrics, which does not
// stop the world the way ReadMemStats does) every 5 ms until the returned
// func is called, and returns the maximum seen.
func samplePeakHeap() func() uint64 {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// cpuMetric reports the process CPU time (user+system) per op: on a shared
// machine wall time mostly measures the neighbours.
func cpuMetric(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoadGuardrail adds one user guardrail, which re-checks the
// whole defaulted mesh in one unification.
func BenchmarkLoadGuardrail(b *testing.B) {
	fsys := meshgen.Generate(1000, meshgen.Options{Seed: 1})
	fsys["policies/owner.cue"] = &fstest.MapFile{Data: []byte(`package guardrails

guardrails: "v1-labelled": {
	code:    "ACME001"
	message: "every version needs a version label"
	check: services: [string]: versions: [string]: labels: version!: string
}
`)}
	b.ReportAllocs()
	defer cpuMetric(b)()
	for i := 0; i < b.N; i++ {
		if _, diags, err := Load(context.Background(), fsys, Options{}); err != nil || len(diags) > 0 {
			b.Fatalf("load: %v %v", err, diags)
		}
	}
}

// BenchmarkLoadDecode compares the two ways of turning validated values
// into model structs (see tuning.decodeViaCUE).
func BenchmarkLoadDecode(b *testing.B) {
	fsys := meshgen.Generate(1000, meshgen.Options{Seed: 1})
	for _, viaJSON := range []bool{true, false} {
		b.Run(map[bool]string{true: "json", false: "cue-decode"}[viaJSON], func(b *testing.B) {
			opts := benchOptions()
			opts.tune.decodeViaCUE = !viaJSON
			b.ReportAllocs()
			defer cpuMetric(b)()
			for i := 0; i < b.N; i++ {
				if _, diags, err := Load(context.Background(), fsys, opts); err != nil || len(diags) > 0 {
					b.Fatalf("load: %v %v", err, diags)
				}
			}
		})
	}
}
