package reconciler

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// BenchmarkSecrets10k is issue 5's benchmark: 10,000 classes with 10,000
// distinct identities. Each iteration issues 10,000 ECDSA P-256
// certificates (a cold start, or every certificate due at once), overlays
// them as SDS secrets and applies the update; then it rotates them all and
// applies again (the secrets-only push). Reported: issue+overlay and Apply
// times, and the heap the served state holds.
func BenchmarkSecrets10k(b *testing.B) {
	const n = 10000
	c, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	// One shared cluster per class stands in for the rendered config, which
	// the secrets overlay never copies.
	cl, _ := proto.Marshal(&clusterv3.Cluster{Name: "outbound|80||x"})
	shared := []*xds.Resource{{Name: "outbound|80||x", Version: "1", Any: &anypb.Any{TypeUrl: resource.ClusterType, Value: cl}}}
	base := xds.Update{Revision: "bench", Classes: make(map[string]*xds.ClassConfig, n)}
	plan := make(map[string]state.ClassSecrets, n)
	for i := 0; i < n; i++ {
		class := fmt.Sprintf("sidecar/ns-%d/svc-%d/v1", i%100, i)
		base.Classes[class] = &xds.ClassConfig{Resources: map[string][]*xds.Resource{resource.ClusterType: shared}}
		plan[class] = state.ClassSecrets{Identity: fmt.Sprintf("spiffe://cluster.local/ns/ns-%d/sa/svc-%d", i%100, i)}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var issueT, applyT, rotateT, rotApplyT time.Duration
	var heap uint64
	b.ReportAllocs()
	for it := 0; it < b.N; it++ {
		srv, _ := xds.New(xds.Options{Logger: log})
		clk := &clock{now: time.Now()}
		st := newSecretStore(Options{CA: c, Now: clk.Now, WorkloadTTL: time.Hour}, newMetrics(), log)

		t0 := time.Now()
		u, changed, err := st.build(base, plan)
		if err != nil || changed != n {
			b.Fatalf("build: %v (%d changed)", err, changed)
		}
		t1 := time.Now()
		if err := srv.Apply(u); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		clk.Add(time.Hour)
		u, changed, err = st.build(base, plan)
		if err != nil || changed != n {
			b.Fatalf("rotate: %v (%d changed)", err, changed)
		}
		t3 := time.Now()
		if err := srv.Apply(u); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		issueT += t1.Sub(t0)
		applyT += t2.Sub(t1)
		rotateT += t3.Sub(t2)
		rotApplyT += t4.Sub(t3)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = max(heap, ms.HeapInuse)
		runtime.KeepAlive(srv)
		runtime.KeepAlive(st)
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(per(issueT), "issue-ms")
	b.ReportMetric(per(applyT), "apply-ms")
	b.ReportMetric(per(rotateT), "reissue-ms")
	b.ReportMetric(per(rotApplyT), "reapply-ms")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
}
