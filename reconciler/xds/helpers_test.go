package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// res marshals m deterministically, as render does, and versions it by
// content hash.
func res(tb testing.TB, name string, m proto.Message) *Resource {
	tb.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		tb.Fatalf("marshal %s: %v", name, err)
	}
	sum := sha256.Sum256(b)
	return &Resource{Name: name, Version: hex.EncodeToString(sum[:8]),
		Any: &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}}
}

func anyOf(tb testing.TB, m proto.Message) *anypb.Any {
	tb.Helper()
	a, err := anypb.New(m)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{ResourceApiVersion: core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
}

// proxyless is a small config a grpc-go xDS client accepts: an API listener
// named target with HCM and router, its route configuration, an EDS cluster
// and its endpoints. withRouter=false leaves the router out, which grpc-go
// NACKs ("http filters list is empty").
type proxyless struct {
	target     string
	backends   []string // host:port
	weight     uint32
	withRouter bool
}

func (p proxyless) resources(tb testing.TB) map[string][]*Resource {
	tb.Helper()
	routeName, clusterName := "route-"+p.target, "cluster-"+p.target
	var filters []*hcm.HttpFilter
	if p.withRouter {
		filters = append(filters, &hcm.HttpFilter{Name: "router",
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: anyOf(tb, &router.Router{})}})
	}
	manager := &hcm.HttpConnectionManager{
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{ConfigSource: adsSource(), RouteConfigName: routeName}},
		HttpFilters:    filters,
	}
	lis := &listener.Listener{Name: p.target, ApiListener: &listener.ApiListener{ApiListener: anyOf(tb, manager)}}
	rc := &route.RouteConfiguration{Name: routeName, VirtualHosts: []*route.VirtualHost{{
		Name: "vh", Domains: []string{"*"},
		Routes: []*route.Route{{
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: clusterName}}},
		}},
	}}}
	cl := &cluster.Cluster{Name: clusterName,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		LbPolicy:             cluster.Cluster_ROUND_ROBIN}
	var lbs []*endpoint.LbEndpoint
	for _, b := range p.backends {
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			tb.Fatal(err)
		}
		var n uint32
		fmt.Sscan(port, &n)
		lbs = append(lbs, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: n}}}}}}})
	}
	weight := p.weight
	if weight == 0 {
		weight = 1
	}
	cla := &endpoint.ClusterLoadAssignment{ClusterName: clusterName, Endpoints: []*endpoint.LocalityLbEndpoints{{
		Locality: &core.Locality{Region: "local"}, LoadBalancingWeight: wrapperspb.UInt32(weight), LbEndpoints: lbs}}}
	return map[string][]*Resource{
		resource.ListenerType: {res(tb, p.target, lis)},
		resource.RouteType:    {res(tb, routeName, rc)},
		resource.ClusterType:  {res(tb, clusterName, cl)},
		resource.EndpointType: {res(tb, clusterName, cla)},
	}
}

// clusters builds n plain clusters and their endpoints, for raw client tests
// where no client parses them. tag changes every version.
func clusters(tb testing.TB, names []string, tag string) map[string][]*Resource {
	tb.Helper()
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	out := map[string][]*Resource{}
	for _, n := range sorted {
		out[resource.ClusterType] = append(out[resource.ClusterType], res(tb, n, &cluster.Cluster{Name: n, AltStatName: tag}))
		out[resource.EndpointType] = append(out[resource.EndpointType], res(tb, n, &endpoint.ClusterLoadAssignment{ClusterName: n}))
	}
	return out
}

// startServer serves s on a loopback port until the test ends.
func startServer(tb testing.TB, s *Server) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func quietLogger() *slog.Logger {
	if os.Getenv("XDS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := New(Options{Logger: quietLogger(), ShutdownTimeout: 2 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func dial(tb testing.TB, addr string) discovery.AggregatedDiscoveryServiceClient {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return discovery.NewAggregatedDiscoveryServiceClient(conn)
}

// pump reads a stream in one goroutine, so tests can wait with a timeout
// and assert silence without two concurrent Recv calls.
type pump[T any] struct {
	ch  chan T
	err chan error
}

func startPump[T any](recv func() (T, error)) *pump[T] {
	p := &pump[T]{ch: make(chan T, 64), err: make(chan error, 1)}
	go func() {
		for {
			v, err := recv()
			if err != nil {
				p.err <- err
				return
			}
			p.ch <- v
		}
	}()
	return p
}

// next returns the next message or fails after d.
func (p *pump[T]) next(tb testing.TB, d time.Duration) T {
	tb.Helper()
	select {
	case v := <-p.ch:
		return v
	case err := <-p.err:
		tb.Fatalf("stream ended: %v", err)
	case <-time.After(d):
		tb.Fatalf("no response within %v", d)
	}
	var zero T
	return zero
}

// count counts messages arriving within d.
func (p *pump[T]) count(d time.Duration) int {
	n := 0
	deadline := time.After(d)
	for {
		select {
		case <-p.ch:
			n++
		case <-deadline:
			return n
		}
	}
}

// fail waits for the stream's error.
func (p *pump[T]) fail(tb testing.TB, d time.Duration) error {
	tb.Helper()
	select {
	case err := <-p.err:
		return err
	case v := <-p.ch:
		tb.Fatalf("got a response, want an error: %v", v)
	case <-time.After(d):
		tb.Fatalf("stream still open after %v", d)
	}
	return nil
}

func names[T interface{ GetName() string }](items []T) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.GetName()
	}
	return out
}
