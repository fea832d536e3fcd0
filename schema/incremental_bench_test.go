package schema

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gitmesh/gitmesh/internal/meshgen"
)

// ownerGuardrail is one user guardrail over every version of every service.
const ownerGuardrail = `package guardrails

guardrails: "v1-labelled": {
	code:    "ACME001"
	message: "every version needs a version label"
	check: services: [string]: versions: [string]: labels: version!: string
}
`

var timeoutRE = regexp.MustCompile(`timeout: "\d+s"`)

// BenchmarkLoadIncremental times what a commit touching one service costs
// with a Cache: the cold load runs outside the timer, then each iteration
// changes one more service file and loads again. With guardrail, one user
// guardrail re-checks the whole mesh on every load.
//
//	go test ./schema -run XXX -bench LoadIncremental -benchtime 20x
func BenchmarkLoadIncremental(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, guardrail := range []bool{false, true} {
			name := fmt.Sprintf("services=%d", n)
			if guardrail {
				name += "/guardrail"
			}
			b.Run(name, func(b *testing.B) {
				fsys := meshgen.Generate(n, meshgen.Options{Seed: 1})
				if guardrail {
					fsys["policies/owner.cue"] = &fstest.MapFile{Data: []byte(ownerGuardrail)}
				}
				c := NewCache()
				opts := benchOptions()
				opts.Cache, opts.Timeout = c, time.Minute
				coldStart, coldCPU := time.Now(), cpuTime()
				if _, diags, err := Load(context.Background(), fsys, opts); err != nil || len(diags) > 0 {
					b.Fatalf("cold load: %v %v", err, diags)
				}
				cold, coldCPU := time.Since(coldStart), cpuTime()-coldCPU
				b.ReportAllocs()
				b.ResetTimer()
				stopCPU := cpuMetric(b)
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					p := meshgen.ServiceFile((i * 7919) % n)
					old := string(fsys[p].Data)
					src := timeoutRE.ReplaceAllString(old, fmt.Sprintf(`timeout: "%ds"`, 3+i))
					if src == old {
						b.Fatalf("%s: no timeout to change", p)
					}
					fsys[p] = &fstest.MapFile{Data: []byte(src), Mode: 0o644}
					b.StartTimer()
					m, diags, err := Load(context.Background(), fsys, opts)
					if err != nil || len(diags) > 0 {
						b.Fatalf("load: %v %v", err, diags)
					}
					if len(m.Services) != n {
						b.Fatalf("got %d services, want %d", len(m.Services), n)
					}
					if st := c.Stats(); st.FilesParsed != 1 || st.EntitiesChecked != 1 {
						b.Fatalf("stats %+v, want one file parsed and one entity checked", st)
					}
				}
				b.StopTimer()
				stopCPU()
				b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
				b.ReportMetric(float64(coldCPU.Milliseconds()), "cold-cpu-ms")
				// What the cache itself holds: live heap with it, less
				// live heap once it is dropped.
				with := liveHeap()
				runtime.KeepAlive(c)
				c, opts = nil, Options{}
				b.ReportMetric(float64(with-liveHeap())/(1<<20), "cache-MB")
			})
		}
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
