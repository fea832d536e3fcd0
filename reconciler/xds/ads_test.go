package xds

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

const (
	classA = "sidecar/default/a/v1"
	nodeA  = classA + "/a-1"
	wait   = 3 * time.Second
	quiet  = 300 * time.Millisecond
)

// anyNames decodes resource names from a SotW response.
func anyNames(tb testing.TB, anys []*anypb.Any) []string {
	tb.Helper()
	var out []string
	for _, a := range anys {
		m, err := a.UnmarshalNew()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, cache.GetResourceName(m))
	}
	return out
}

// baseConfig is three clusters c1..c3 with endpoints.
func baseConfig(tb testing.TB) map[string][]*Resource {
	return clusters(tb, []string{"c1", "c2", "c3"}, "r1")
}

// with returns cfg with one resource replaced or added (kept sorted).
func with(cfg map[string][]*Resource, typeURL string, r *Resource) map[string][]*Resource {
	out := map[string][]*Resource{}
	for k, v := range cfg {
		out[k] = slices.Clone(v)
	}
	list := out[typeURL]
	i, found := slices.BinarySearchFunc(list, r.Name, func(e *Resource, n string) int { return strings.Compare(e.Name, n) })
	if found {
		list[i] = r
	} else {
		list = slices.Insert(list, i, r)
	}
	out[typeURL] = list
	return out
}

// without returns cfg without the named resource of typeURL.
func without(cfg map[string][]*Resource, typeURL, name string) map[string][]*Resource {
	out := map[string][]*Resource{}
	for k, v := range cfg {
		out[k] = slices.DeleteFunc(slices.Clone(v), func(r *Resource) bool { return k == typeURL && r.Name == name })
	}
	return out
}

func apply(tb testing.TB, s *Server, rev string, cfg map[string][]*Resource) {
	tb.Helper()
	if err := s.Apply(Update{Revision: rev, Classes: map[string]*ClassConfig{classA: {Resources: cfg}}}); err != nil {
		tb.Fatal(err)
	}
}

func ack(r *discovery.DiscoveryResponse, names ...string) *discovery.DiscoveryRequest {
	return &discovery.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce(), ResourceNames: names}
}

func TestSotwSendsExactlyWhatIsSubscribedAndOnlyChanges(t *testing.T) {
	s := newTestServer(t)
	cfg := baseConfig(t)
	apply(t, s, "r1", cfg)
	st, err := dial(t, startServer(t, s)).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)

	// Wildcard CDS gets all clusters; named EDS only the existing named one,
	// although the class holds more (no ADS stall).
	st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType})
	cds := p.next(t, wait)
	if got := anyNames(t, cds.GetResources()); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Fatalf("CDS = %v, want c1 c2 c3", got)
	}
	st.Send(&discovery.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: []string{"c1", "missing"}})
	eds := p.next(t, wait)
	if got := anyNames(t, eds.GetResources()); !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("EDS = %v, want c1", got)
	}
	st.Send(ack(cds))
	st.Send(ack(eds, "c1", "missing"))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to ACKs, want 0", n)
	}

	// A cluster change re-sends CDS (full state) and nothing else.
	cfg = with(cfg, resource.ClusterType, res(t, "c2", &cluster.Cluster{Name: "c2", AltStatName: "r2"}))
	apply(t, s, "r2", cfg)
	cds2 := p.next(t, wait)
	if cds2.GetTypeUrl() != resource.ClusterType || cds2.GetVersionInfo() == cds.GetVersionInfo() || len(cds2.GetResources()) != 3 {
		t.Fatalf("after cluster change got %s version %q with %d resources", cds2.GetTypeUrl(), cds2.GetVersionInfo(), len(cds2.GetResources()))
	}
	st.Send(ack(cds2))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d extra responses after a cluster change, want 0", n)
	}

	// Endpoints of an unsubscribed cluster change: nothing is sent.
	cfg = with(cfg, resource.EndpointType, res(t, "c2", &endpoint.ClusterLoadAssignment{ClusterName: "c2", Endpoints: []*endpoint.LocalityLbEndpoints{{}}}))
	apply(t, s, "r3", cfg)
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses for an unsubscribed change, want 0", n)
	}
	// Endpoints of the subscribed one change: EDS with exactly it.
	cfg = with(cfg, resource.EndpointType, res(t, "c1", &endpoint.ClusterLoadAssignment{ClusterName: "c1", Endpoints: []*endpoint.LocalityLbEndpoints{{}}}))
	apply(t, s, "r4", cfg)
	eds2 := p.next(t, wait)
	if got := anyNames(t, eds2.GetResources()); eds2.GetTypeUrl() != resource.EndpointType || !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("got %s %v, want EDS c1", eds2.GetTypeUrl(), got)
	}
}

func TestSotwNackIsNotResent(t *testing.T) {
	s := newTestServer(t)
	cfg := baseConfig(t)
	apply(t, s, "r1", cfg)
	st, err := dial(t, startServer(t, s)).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType})
	cds := p.next(t, wait)
	nack := &discovery.DiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: cds.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: `cluster "c2": bad`}}
	st.Send(nack)
	// go-control-plane's snapshot cache re-sends at once, thousands of times a
	// second (#962); we wait for a new version.
	if n := p.count(time.Second); n != 0 {
		t.Fatalf("%d responses within 1s after a NACK, want 0", n)
	}
	ts := typeStatus(t, s, nodeA, resource.ClusterType)
	if ts.Status != apiv1.Nacked || ts.LastNack == nil || ts.LastNack.Error != `cluster "c2": bad` || ts.LastNack.Version != cds.GetVersionInfo() {
		t.Fatalf("status after NACK = %+v (nack %+v)", ts, ts.LastNack)
	}
	apply(t, s, "r2", with(cfg, resource.ClusterType, res(t, "c2", &cluster.Cluster{Name: "c2", AltStatName: "fixed"})))
	cds2 := p.next(t, wait)
	st.Send(ack(cds2))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses after ACK of the fix, want 0", n)
	}
	ts = typeStatus(t, s, nodeA, resource.ClusterType)
	if ts.Status != apiv1.Synced || ts.AckedVersion != cds2.GetVersionInfo() || ts.AckedRevision != "r2" || ts.LastNack == nil {
		t.Fatalf("status after fix = %+v", ts)
	}
}

func typeStatus(tb testing.TB, s *Server, node, typeURL string) apiv1.TypeStatus {
	tb.Helper()
	for _, p := range s.Proxies() {
		if p.NodeID != node {
			continue
		}
		for _, ts := range p.Types {
			if ts.TypeURL == typeURL {
				return ts
			}
		}
	}
	tb.Fatalf("no status for %s %s in %+v", node, typeURL, s.Proxies())
	return apiv1.TypeStatus{}
}

func TestDeltaSendsOnlyChangedResources(t *testing.T) {
	s := newTestServer(t)
	cfg := baseConfig(t)
	apply(t, s, "r1", cfg)
	st, err := dial(t, startServer(t, s)).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType})
	cds := p.next(t, wait)
	if got := names(cds.GetResources()); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Fatalf("delta CDS = %v", got)
	}
	st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNamesSubscribe: []string{"c1", "missing"}})
	eds := p.next(t, wait)
	if got := names(eds.GetResources()); !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("delta EDS = %v", got)
	}
	st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: cds.GetNonce()})
	st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResponseNonce: eds.GetNonce()})
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to ACKs", n)
	}
	if ts := typeStatus(t, s, nodeA, resource.ClusterType); ts.Status != apiv1.Synced || ts.AckedRevision != "r1" {
		t.Fatalf("delta CDS status = %+v", ts)
	}

	c2 := res(t, "c2", &cluster.Cluster{Name: "c2", AltStatName: "r2"})
	cfg = with(cfg, resource.ClusterType, c2)
	apply(t, s, "r2", cfg)
	d := p.next(t, wait)
	if got := names(d.GetResources()); !slices.Equal(got, []string{"c2"}) || len(d.GetRemovedResources()) != 0 ||
		d.GetResources()[0].GetVersion() != c2.Version || d.GetSystemVersionInfo() != "r2" {
		t.Fatalf("after one change got %v removed %v", got, d.GetRemovedResources())
	}
	// NACK it: no re-send loop.
	st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: d.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Message: "no"}})
	if n := p.count(time.Second); n != 0 {
		t.Fatalf("%d responses within 1s after a delta NACK, want 0", n)
	}
	if ts := typeStatus(t, s, nodeA, resource.ClusterType); ts.Status != apiv1.Nacked || ts.LastNack.Revision != "r2" {
		t.Fatalf("delta status after NACK = %+v", ts)
	}

	cfg = without(cfg, resource.ClusterType, "c3")
	apply(t, s, "r3", cfg)
	d = p.next(t, wait)
	if len(d.GetResources()) != 0 || !slices.Equal(d.GetRemovedResources(), []string{"c3"}) {
		t.Fatalf("after removal got %v removed %v", names(d.GetResources()), d.GetRemovedResources())
	}
	// Unsubscribed endpoints change: nothing.
	apply(t, s, "r4", with(cfg, resource.EndpointType, res(t, "c2", &endpoint.ClusterLoadAssignment{ClusterName: "c2", Endpoints: []*endpoint.LocalityLbEndpoints{{}}})))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses for an unsubscribed change", n)
	}
}

func TestDeltaReconnectSendsOnlyWhatClientLacks(t *testing.T) {
	s := newTestServer(t)
	cfg := baseConfig(t)
	apply(t, s, "r1", cfg)
	st, err := dial(t, startServer(t, s)).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	known := map[string]string{}
	for _, r := range cfg[resource.ClusterType] {
		known[r.Name] = r.Version
	}
	known["c2"] = "old"
	known["gone"] = "x"
	st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType,
		ResourceNamesSubscribe: []string{"*"}, InitialResourceVersions: known})
	d := p.next(t, wait)
	if got := names(d.GetResources()); !slices.Equal(got, []string{"c2"}) || !slices.Equal(d.GetRemovedResources(), []string{"gone"}) {
		t.Fatalf("reconnect got %v removed %v, want [c2] removed [gone]", got, d.GetRemovedResources())
	}
}

func TestRefusedStreams(t *testing.T) {
	s := newTestServer(t)
	c := dial(t, startServer(t, s))
	tests := []struct {
		name, node string
		apply      bool
		code       codes.Code
		msg        string
	}{
		{"before first apply", nodeA, false, codes.Unavailable, "no configuration loaded yet"},
		{"malformed id", "reviews", true, codes.InvalidArgument, `node id "reviews" is not CLASS/INSTANCE`},
		{"empty instance", classA + "/", true, codes.InvalidArgument, `node id "sidecar/default/a/v1/": empty instance`},
		{"malformed class", "sidecar/default/a/a-1", true, codes.InvalidArgument, `want sidecar/NAMESPACE/SERVICE/VERSION/INSTANCE (got 4 parts)`},
		{"unknown class", "sidecar/default/b/v1/b-1", true, codes.NotFound,
			`unknown proxy class "sidecar/default/b/v1" of node "sidecar/default/b/v1/b-1" at revision "r1"; served classes: 1 sidecar/…; closest: "sidecar/default/a/v1"`},
	}
	for _, tt := range tests {
		if tt.apply && s.Revision() == "" {
			apply(t, s, "r1", baseConfig(t))
		}
		for _, delta := range []bool{false, true} {
			t.Run(tt.name+"/"+protocol(delta), func(t *testing.T) {
				var err error
				if delta {
					st, _ := c.DeltaAggregatedResources(t.Context())
					st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: tt.node}, TypeUrl: resource.ClusterType})
					err = startPump(st.Recv).fail(t, wait)
				} else {
					st, _ := c.StreamAggregatedResources(t.Context())
					st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: tt.node}, TypeUrl: resource.ClusterType})
					err = startPump(st.Recv).fail(t, wait)
				}
				if s := status.Convert(err); s.Code() != tt.code || !strings.Contains(s.Message(), tt.msg) {
					t.Fatalf("got %v %q, want %v containing %q", s.Code(), s.Message(), tt.code, tt.msg)
				}
			})
		}
	}
	// One peer refused for one reason and node is one entry, counted: here
	// a SotW and a delta stream each. Newest first.
	rej := s.Rejections()
	if len(rej) != len(tests) || rej[0].Code != "NotFound" || rej[0].NodeID != "sidecar/default/b/v1/b-1" || rej[0].Reason != apiv1.ReasonUnknownClass {
		t.Fatalf("rejections = %+v", rej)
	}
	for _, r := range rej {
		if r.Count != 2 || r.FirstAt.After(r.At) {
			t.Errorf("rejection %s %s: count %d first %v last %v, want 2 (sotw and delta)", r.NodeID, r.Reason, r.Count, r.FirstAt, r.At)
		}
	}
}

func TestServeShutsDownWithOpenStreams(t *testing.T) {
	s := newTestServer(t)
	apply(t, s, "r1", baseConfig(t))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	st, err := dial(t, lis.Addr().String()).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType})
	p.next(t, wait)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return")
	}
	t.Logf("shutdown with an open stream took %v", time.Since(start))
	p.fail(t, wait)
	if err := s.Serve(context.Background(), lis); err == nil {
		t.Fatal("second Serve succeeded")
	}
}

// TestSotwIncrementalTypesSendOnlyChanges: in SotW, EDS (like RDS) may
// carry only the changed resources (xds_protocol, "Grouping Resources into
// Responses"), while CDS and LDS carry the full state. A named EDS
// subscription gets only the changed or newly subscribed assignments, and
// ACKs get nothing.
func TestSotwIncrementalTypesSendOnlyChanges(t *testing.T) {
	s := newTestServer(t)
	cfg := baseConfig(t)
	apply(t, s, "r1", cfg)
	addr := startServer(t, s)
	st, err := dial(t, addr).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.EndpointType, ResourceNames: []string{"c1", "c2"}})
	eds := p.next(t, wait)
	if got := anyNames(t, eds.GetResources()); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Fatalf("first EDS = %v, want c1 c2", got)
	}
	st.Send(ack(eds, "c1", "c2"))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to an ACK, want 0", n)
	}

	cfg = with(cfg, resource.EndpointType, res(t, "c2", &endpoint.ClusterLoadAssignment{ClusterName: "c2", Endpoints: []*endpoint.LocalityLbEndpoints{{}}}))
	apply(t, s, "r2", cfg)
	eds2 := p.next(t, wait)
	if got := anyNames(t, eds2.GetResources()); !slices.Equal(got, []string{"c2"}) {
		t.Fatalf("EDS after c2 changed = %v, want only c2", got)
	}
	st.Send(ack(eds2, "c1", "c2"))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to an ACK, want 0", n)
	}

	// Subscribing to one more name brings what it names: the server keeps
	// one sync entry per subscription, not the version of every name, so
	// it sends all of them (as SotW always did on a new subscription).
	st.Send(ack(eds2, "c1", "c2", "c3"))
	eds3 := p.next(t, wait)
	if got := anyNames(t, eds3.GetResources()); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Fatalf("EDS after subscribing c3 = %v, want c1 c2 c3", got)
	}
	// So does dropping a name (the subscription changed).
	st.Send(ack(eds3, "c1", "c3"))
	eds4 := p.next(t, wait)
	if got := anyNames(t, eds4.GetResources()); !slices.Equal(got, []string{"c1", "c3"}) {
		t.Fatalf("EDS after unsubscribing c2 = %v, want c1 c3", got)
	}
	st.Send(ack(eds4, "c1", "c3"))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to an ACK, want 0", n)
	}

	// A reconnecting stream gets everything it names.
	st2, err := dial(t, addr).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p2 := startPump(st2.Recv)
	st2.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.EndpointType, ResourceNames: []string{"c1", "c2", "c3"}})
	if got := anyNames(t, p2.next(t, wait).GetResources()); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Fatalf("EDS on a new stream = %v, want c1 c2 c3", got)
	}
}
