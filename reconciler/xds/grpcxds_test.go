package xds

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

const proxylessClass = "proxyless/default/svc/v1"

// backend is a real gRPC server whose health service answers SERVING for
// its own name only, so an RPC tells which backend the client reached.
func backend(tb testing.TB, name string) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(lis)
	tb.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// xdsClient dials xds:///target through grpc-go's own xDS resolver, with a
// per-client bootstrap (no GRPC_XDS_BOOTSTRAP_CONFIG, no child process).
func xdsClient(tb testing.TB, serverAddr, nodeID, target string) healthpb.HealthClient {
	tb.Helper()
	bootstrap := fmt.Sprintf(`{"xds_servers":[{"server_uri":%q,"channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":%q}}`,
		serverAddr, nodeID)
	builder, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(builder))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// reaches polls until an RPC through the client lands on the named backend.
func reaches(tb testing.TB, c healthpb.HealthClient, name string) time.Duration {
	tb.Helper()
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: name}, grpc.WaitForReady(true))
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	tb.Fatalf("no RPC reached %q within 10s", name)
	return 0
}

// eventually polls the status until ok holds for the proxy's type.
func eventually(tb testing.TB, s *Server, node, typeURL string, ok func(apiv1.TypeStatus) bool) apiv1.TypeStatus {
	tb.Helper()
	var last apiv1.TypeStatus
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		for _, p := range s.Proxies() {
			for _, ts := range p.Types {
				if p.NodeID == node && ts.TypeURL == typeURL {
					last = ts
					if ok(ts) {
						return ts
					}
				}
			}
		}
	}
	tb.Fatalf("status of %s %s never matched; last %+v (nack %+v)", node, typeURL, last, last.LastNack)
	return last
}

func TestGrpcXdsClientEndToEnd(t *testing.T) {
	b1, b2 := backend(t, "b1"), backend(t, "b2")
	reg := prometheus.NewRegistry()
	s, err := New(Options{Logger: quietLogger(), Registerer: reg, ShutdownTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	applyProxyless := func(rev string, p proxyless) {
		t.Helper()
		err := s.Apply(Update{Revision: rev, Classes: map[string]*ClassConfig{proxylessClass: {Resources: p.resources(t)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	applyProxyless("r1", proxyless{target: "svc.test", backends: []string{b1}, withRouter: true})
	node := proxylessClass + "/pod-1"
	client := xdsClient(t, startServer(t, s), node, "svc.test")

	t.Logf("first RPC through xds:/// after %v", reaches(t, client, "b1"))
	for _, typeURL := range snapshot.Rendered() {
		eventually(t, s, node, typeURL, func(ts apiv1.TypeStatus) bool { return ts.Status == apiv1.Synced && ts.AckedRevision == "r1" })
	}

	// Move the endpoints: only EDS is pushed, grpc-go ACKs it, RPCs follow.
	start := time.Now()
	applyProxyless("r2", proxyless{target: "svc.test", backends: []string{b2}, withRouter: true})
	eventually(t, s, node, resource.EndpointType, func(ts apiv1.TypeStatus) bool { return ts.Status == apiv1.Synced && ts.AckedRevision == "r2" })
	t.Logf("endpoint change ACKed after %v", time.Since(start))
	reaches(t, client, "b2")
	if ts := typeStatus(t, s, node, resource.ClusterType); ts.SentRevision != "r1" || ts.Status != apiv1.Synced {
		t.Fatalf("unchanged CDS was re-sent or is not synced: %+v", ts)
	}
	// Only EDS moved to r2, yet the proxy runs r2 as a whole: the types not
	// re-sent are unchanged since r1.
	if ps := s.Proxies(); len(ps) != 1 || ps[0].Status != apiv1.Synced || ps[0].Revision != "r2" {
		t.Fatalf("proxies = %+v, want one SYNCED at r2", ps)
	}
	// A revision that changes nothing for the class sends nothing; the
	// proxy runs it all the same.
	applyProxyless("r2b", proxyless{target: "svc.test", backends: []string{b2}, withRouter: true})
	if ps := s.Proxies(); len(ps) != 1 || ps[0].Status != apiv1.Synced || ps[0].Revision != "r2b" {
		t.Fatalf("proxies = %+v, want one SYNCED at r2b", ps)
	}
	if ts := typeStatus(t, s, node, resource.EndpointType); ts.SentRevision != "r2" {
		t.Fatalf("an unchanged EDS was re-sent at r2b: %+v", ts)
	}

	// A listener without the router filter: grpc-go NACKs it, the server
	// does not re-send it, the client keeps serving with its last good config.
	applyProxyless("r3", proxyless{target: "svc.test", backends: []string{b2}, withRouter: false})
	nack := eventually(t, s, node, resource.ListenerType, func(ts apiv1.TypeStatus) bool { return ts.Status == apiv1.Nacked })
	if nack.LastNack.Revision != "r3" || !strings.Contains(nack.LastNack.Error, "filter") {
		t.Fatalf("NACK recorded as %+v", nack.LastNack)
	}
	t.Logf("grpc-go NACK text: %s", nack.LastNack.Error)
	lds := testutil.ToFloat64(s.metrics.pushes.WithLabelValues("Listener", "sotw"))
	time.Sleep(time.Second)
	if after := testutil.ToFloat64(s.metrics.pushes.WithLabelValues("Listener", "sotw")); after != lds {
		t.Fatalf("%v listener pushes within 1s after the NACK, want 0", after-lds)
	}
	reaches(t, client, "b2")
	if n := testutil.ToFloat64(s.metrics.nacks.WithLabelValues("Listener")); n != 1 {
		t.Fatalf("nacks counter = %v, want 1", n)
	}

	// The fix is pushed and ACKed.
	applyProxyless("r4", proxyless{target: "svc.test", backends: []string{b1}, withRouter: true})
	eventually(t, s, node, resource.ListenerType, func(ts apiv1.TypeStatus) bool { return ts.Status == apiv1.Synced && ts.AckedRevision == "r4" })
	reaches(t, client, "b1")

	if n, err := testutil.GatherAndCount(reg, "gitmesh_xds_connected_streams", "gitmesh_xds_sent_bytes_total"); err != nil || n == 0 {
		t.Fatalf("metrics not registered: %d, %v", n, err)
	}
}
