package promrates

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// TestEdge reads source and destination from the labels of each family.
// The real series are checked end to end against a real Prometheus in
// cmd/gitmesh's TestPrometheusEdgeRates.
func TestEdge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		f        family
		m        model.Metric
		src, dst apiv1.Workload
		ok       bool
	}{
		{"envoy sidecar to a version", familyEnvoy, model.Metric{
			"gitmesh_kind": "sidecar", "gitmesh_namespace": "default", "gitmesh_service": "productpage", "gitmesh_version": "v1",
			"envoy_cluster_name": "outbound|9080|v2|reviews.default.svc.cluster.local"},
			apiv1.Workload{Namespace: "default", Service: "productpage", Version: "v1"},
			apiv1.Workload{Namespace: "default", Service: "reviews", Version: "v2"}, true},
		{"envoy gateway to all versions, other cluster domain", familyEnvoy, model.Metric{
			"gitmesh_kind": "ingress", "gitmesh_service": "edge",
			"envoy_cluster_name": "outbound|9080||productpage.shop.svc.example.org"},
			apiv1.Workload{Service: "edge"}, apiv1.Workload{Namespace: "shop", Service: "productpage"}, true},
		{"envoy external host", familyEnvoy, model.Metric{
			"gitmesh_service": "egress", "envoy_cluster_name": "outbound|443||api.example.com"},
			apiv1.Workload{Service: "egress"}, apiv1.Workload{Service: "api.example.com"}, true},
		{"envoy inbound cluster", familyEnvoy, model.Metric{
			"gitmesh_service": "productpage", "envoy_cluster_name": "inbound|9080||"}, apiv1.Workload{}, apiv1.Workload{}, false},
		{"envoy without stats tags", familyEnvoy, model.Metric{
			"envoy_cluster_name": "outbound|9080|v2|reviews.default.svc.cluster.local"}, apiv1.Workload{}, apiv1.Workload{}, false},
		{"grpc with backend service", familyGRPC, model.Metric{
			"service_namespace": "default", "service_name": "client", "service_version": "v1",
			"grpc_target": "xds:///greeter:50051", "grpc_lb_backend_service": "outbound|50051|v2|greeter.default.svc.cluster.local"},
			apiv1.Workload{Namespace: "default", Service: "client", Version: "v1"},
			apiv1.Workload{Namespace: "default", Service: "greeter", Version: "v2"}, true},
		{"grpc by target only", familyGRPC, model.Metric{
			"service_namespace": "default", "service_name": "client", "service_version": "v1",
			"grpc_target": "xds:///greeter:50051", "grpc_lb_backend_service": ""},
			apiv1.Workload{Namespace: "default", Service: "client", Version: "v1"},
			apiv1.Workload{Namespace: "default", Service: "greeter"}, true},
		{"grpc by FQDN target", familyGRPC, model.Metric{
			"service_name": "client", "grpc_target": "xds:///greeter.other.svc.cluster.local:50051"},
			apiv1.Workload{Service: "client"}, apiv1.Workload{Namespace: "other", Service: "greeter"}, true},
		{"grpc without xds", familyGRPC, model.Metric{
			"service_name": "client", "grpc_target": "dns:///127.0.0.1:50061"}, apiv1.Workload{}, apiv1.Workload{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, ok := edge(tc.f, tc.m)
			if ok != tc.ok || (ok && (src != tc.src || dst != tc.dst)) {
				t.Errorf("edge = %+v → %+v (%v), want %+v → %+v (%v)", src, dst, ok, tc.src, tc.dst, tc.ok)
			}
		})
	}
}

// TestEdgeRatesTimesOutAndCaches points the client at a port that accepts
// connections and never answers, as a hung Prometheus does: EdgeRates must
// give up within queryTimeout, and a second call within cacheFor must
// answer from the cache instead of waiting again.
func TestEdgeRatesTimesOutAndCaches(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c, err := New("http://"+lis.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.EdgeRates(context.Background()); err == nil || !strings.Contains(err.Error(), "prometheus query") {
		t.Fatalf("EdgeRates against a hung server: %v, want a query error", err)
	}
	if d := time.Since(start); d > queryTimeout+2*time.Second {
		t.Errorf("EdgeRates took %v, want about %v", d, queryTimeout)
	}
	start = time.Now()
	if _, err := c.EdgeRates(context.Background()); err == nil {
		t.Fatal("the cached answer lost its error")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("second EdgeRates took %v: not cached", d)
	}
}

func TestNewRefusesTinyWindow(t *testing.T) {
	if _, err := New("http://127.0.0.1:9090", time.Millisecond); err == nil {
		t.Fatal("New accepted a 1ms window")
	}
}
