package render

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// BenchmarkRender renders bookinfo and generated meshes of 1,000 and 10,000
// services (meshgen: two versions each, dependsOn 5), and 1,000 services
// unscoped (every sidecar sees every service: meshbench -unscoped). Loading is outside the
// timer. Besides time and allocations it reports the live heap the bundle
// holds (HeapInuse after GC, minus before), the proxy classes and the
// distinct resources.
//
//	go test ./render -run '^$' -bench BenchmarkRender -benchtime 3x
func BenchmarkRender(b *testing.B) {
	for _, bc := range []struct {
		name     string
		n        int
		unscoped bool
	}{{"bookinfo", 0, false}, {"services=1000", 1000, false}, {"services=10000", 10000, false}, {"unscoped/services=1000", 1000, true}} {
		b.Run(bc.name, func(b *testing.B) {
			var m *model.Mesh
			if bc.n == 0 {
				m = loadCase(b, "bookinfo")
			} else {
				var diags model.Diagnostics
				var err error
				m, diags, err = schema.Load(context.Background(), meshgen.Generate(bc.n, meshgen.Options{Seed: 1, Unscoped: bc.unscoped}), schema.Options{Timeout: 10 * time.Minute})
				if err != nil || diags.HasErrors() {
					b.Fatalf("load: %v %v", err, diags)
				}
			}
			in := Input{Mesh: m}
			// Bundle memory first, on a clean heap: live bytes after GC
			// with the bundle held, minus before. One render beforehand
			// pays the protobuf runtime's one-time type initialisation.
			if _, err := Render(in); err != nil {
				b.Fatal(err)
			}
			before := heapAlloc()
			bundle, err := Render(in)
			if err != nil {
				b.Fatal(err)
			}
			bundleBytes := heapAlloc() - before
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, runs := cpuTime(), 0
			for b.Loop() {
				if _, err := Render(in); err != nil {
					b.Fatal(err)
				}
				runs++
			}
			b.StopTimer()
			// The machine is shared: CPU time per render (all threads,
			// GC included) is the figure that does not depend on load.
			b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(runs), "cpu-ms/op")
			b.ReportMetric(float64(bundleBytes)/(1<<20), "MiB-bundle")
			b.ReportMetric(float64(len(bundle.Classes())), "classes")
			b.ReportMetric(float64(distinct(bundle)), "resources")
			runtime.KeepAlive(bundle)
		})
	}
}

// cpuTime is this process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// heapAlloc is the live heap after a GC. (HeapInuse counts whole spans and
// goes negative across renders because of fragmentation.)
func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// distinct counts distinct resources (by pointer) in a bundle.
func distinct(b *Bundle) int {
	seen := map[*Resource]bool{}
	for _, c := range b.Classes() {
		for _, t := range snapshot.Rendered() {
			for _, r := range b.Proxy(c).Resources(t) {
				seen[r] = true
			}
		}
	}
	return len(seen)
}

// BenchmarkRenderEdit is the reconciler's render of one weight edit in a
// mesh of 1,000 services, unscoped (meshbench -unscoped) and with
// dependsOn 5: a render.Cache holds the previous revision, and every
// iteration renders the other of two revisions that differ in one
// service's v1/v2 split.
//
//	go test ./render -run '^$' -bench BenchmarkRenderEdit -benchtime 5x
func BenchmarkRenderEdit(b *testing.B) {
	for _, unscoped := range []bool{true, false} {
		name := "scoped"
		if unscoped {
			name = "unscoped"
		}
		b.Run(name, func(b *testing.B) { benchmarkRenderEdit(b, unscoped) })
	}
}

func benchmarkRenderEdit(b *testing.B, unscoped bool) {
	fsys := meshgen.Generate(1000, meshgen.Options{Seed: 1, Unscoped: unscoped})
	var ms [2]*model.Mesh
	for i, f := range []fstest.MapFS{fsys, editWeight(b, fsys, 500)} {
		m, diags, err := schema.Load(context.Background(), f, schema.Options{Timeout: 10 * time.Minute})
		if err != nil || diags.HasErrors() {
			b.Fatalf("load: %v %v", err, diags)
		}
		ms[i] = m
	}
	c := NewCache()
	if _, err := c.Render(Input{Mesh: ms[0]}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, runs := cpuTime(), 0
	for b.Loop() {
		runs++
		if _, err := c.Render(Input{Mesh: ms[runs%2]}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(runs), "cpu-ms/op")
	st := c.Stats()
	b.ReportMetric(float64(st.Built), "built")
	b.ReportMetric(float64(st.Reused), "reused")
}
