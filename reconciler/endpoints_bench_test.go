package reconciler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// BenchmarkEndpointChurn measures one endpoint change of one service in a
// generated mesh (dependsOn 5): re-render, rebuild the update reusing
// unchanged classes, and Apply to a real xDS server — what the reconciler
// does per debounced discovery event. Reported: time per change and how
// many classes got a new config (only the callers of the service should).
func BenchmarkEndpointChurn(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			m, ds, err := schema.Load(context.Background(), meshgen.Generate(n, meshgen.Options{Seed: 1}), schema.Options{})
			if err != nil || ds.HasErrors() {
				b.Fatalf("load: %v %v", err, ds)
			}
			srv, _ := xds.New(xds.Options{Logger: quiet})
			disc := &staticDiscovery{changed: make(chan struct{}, 1), synced: true, eps: map[string][]model.Endpoint{}}
			r, err := New(Options{Source: nopSource{}, Server: srv, Logger: quiet, Discovery: disc, StateDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			r.live = &liveInput{revision: "bench", mesh: m, endpoints: map[string][]model.Endpoint{}}
			// Served revision on record: each change is also saved to the state dir.
			r.lastGood = &state.LastGood{Revision: "bench"}
			r.RefreshEndpoints() // the first full apply
			disc.set(map[string][]model.Endpoint{"svc00000/v1": {{Address: "10.0.0.1"}}}, true)
			r.RefreshEndpoints()
			before := r.served
			changed := 0
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				disc.set(map[string][]model.Endpoint{"svc00000/v1": {{Address: fmt.Sprintf("10.0.%d.%d", i/250%250, i%250+1)}}}, true)
				r.RefreshEndpoints()
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/change")
			for class, cfg := range r.served.Classes {
				if before.Classes[class] != cfg {
					changed++
				}
			}
			b.ReportMetric(float64(changed), "classes-changed")
		})
	}
}

// nopSource is a source that is never asked: the benchmark drives
// RefreshEndpoints directly.
type nopSource struct{}

func (nopSource) Latest(context.Context) (source.Revision, error) {
	return source.Revision{}, errors.New("not used")
}
func (nopSource) String() string { return "bench" }
