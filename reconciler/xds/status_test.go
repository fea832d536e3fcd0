package xds

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

func TestSyncStatusLifecycle(t *testing.T) {
	s := newTestServer(t)
	apply(t, s, "r1", baseConfig(t))
	addr := startServer(t, s)
	st, err := dial(t, addr).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType})
	cds := p.next(t, wait)
	// A delta stream subscribed by name to something that does not exist is
	// sent nothing.
	dst, err := dial(t, addr).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dst.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: classA + "/a-2"}, TypeUrl: resource.EndpointType,
		ResourceNamesSubscribe: []string{"nothing"}})

	steps := []struct {
		name    string
		send    *discovery.DiscoveryRequest
		typeURL string
		want    apiv1.SyncStatus
	}{
		{"sent, not acked", nil, resource.ClusterType, apiv1.Stale},
		{"nacked", &discovery.DiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: cds.GetNonce(),
			ErrorDetail: &rpcstatus.Status{Message: strings.Repeat("e", 3000)}}, resource.ClusterType, apiv1.Nacked},
	}
	for _, step := range steps {
		if step.send != nil {
			st.Send(step.send)
		}
		ts := eventually(t, s, nodeA, step.typeURL, func(ts apiv1.TypeStatus) bool { return ts.Status == step.want })
		t.Logf("%s: %+v", step.name, ts)
	}
	eventually(t, s, classA+"/a-2", resource.EndpointType, func(ts apiv1.TypeStatus) bool { return ts.Status == apiv1.NotSent })
	ts := typeStatus(t, s, nodeA, resource.ClusterType)
	if n := len(ts.LastNack.Error); n > MaxErrorDetailBytes+len("…") {
		t.Fatalf("NACK text kept %d bytes, want at most %d", n, MaxErrorDetailBytes)
	}
	proxies := s.Proxies()
	if len(proxies) != 2 || proxies[1].Status != apiv1.NotSent || proxies[0].Status != apiv1.Nacked || proxies[0].Class != classA || proxies[0].Protocol != "sotw" {
		t.Fatalf("proxies = %+v", proxies)
	}
	b, err := json.Marshal(proxies[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"nodeId":"` + nodeA + `"`, `"status":"NACKED"`, `"lastNack":{`, `"sentRevision":"r1"`, `"connectedAt":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	if strings.Contains(string(b), "nackedNonce") || strings.Contains(string(b), `"ackedAt"`) {
		t.Errorf("JSON leaks internal or zero fields: %s", b)
	}
}

func TestRemovedClass(t *testing.T) {
	s := newTestServer(t)
	apply(t, s, "r1", baseConfig(t))
	c := dial(t, startServer(t, s))
	st, err := c.DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType})
	d := p.next(t, wait)
	st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: d.GetNonce()})

	// The class disappears: its connected proxy is told to remove everything,
	// a new one is refused.
	if err := s.Apply(Update{Revision: "r2", Classes: map[string]*ClassConfig{"ingress/gw": {}}}); err != nil {
		t.Fatal(err)
	}
	d = p.next(t, wait)
	if !slices.Equal(d.GetRemovedResources(), []string{"c1", "c2", "c3"}) {
		t.Fatalf("removed = %v", d.GetRemovedResources())
	}
	st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: d.GetNonce()})
	st2, _ := c.StreamAggregatedResources(t.Context())
	st2.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: classA + "/a-2"}, TypeUrl: resource.ClusterType})
	if err := startPump(st2.Recv).fail(t, wait); status.Code(err) != codes.NotFound {
		t.Fatalf("new stream of a removed class: %v", err)
	}
	if got := s.Classes(); !slices.Equal(got, []string{"ingress/gw"}) {
		t.Fatalf("classes = %v", got)
	}
	// It comes back: the connected proxy gets it all again.
	apply(t, s, "r3", baseConfig(t))
	d = p.next(t, wait)
	if got := names(d.GetResources()); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Fatalf("after return got %v", got)
	}
}

func TestApplyRefusesInvalidUpdates(t *testing.T) {
	s := newTestServer(t)
	good := baseConfig(t)
	c1 := good[resource.ClusterType][0]
	tests := []struct {
		name string
		u    Update
		want string
	}{
		{"no revision", Update{Classes: map[string]*ClassConfig{classA: {Resources: good}}}, "revision is empty"},
		{"unsorted", Update{Revision: "r", Classes: map[string]*ClassConfig{classA: {Resources: map[string][]*Resource{
			resource.ClusterType: {good[resource.ClusterType][1], c1}}}}}, `"c1" after "c2": names must be sorted and unique`},
		{"wrong type", Update{Revision: "r", Classes: map[string]*ClassConfig{classA: {Resources: map[string][]*Resource{
			resource.ListenerType: {c1}}}}}, `Any has type "type.googleapis.com/envoy.config.cluster.v3.Cluster"`},
		{"empty version", Update{Revision: "r", Classes: map[string]*ClassConfig{classA: {Resources: map[string][]*Resource{
			resource.ClusterType: {{Name: "x", Any: c1.Any}}}}}}, `"x": empty version`},
		{"bad class", Update{Revision: "r", Classes: map[string]*ClassConfig{"/x": {}}}, `class "/x": malformed class name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Apply(tt.u)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v, want error containing %q", err, tt.want)
			}
			if s.Revision() != "" {
				t.Fatalf("invalid update was applied")
			}
		})
	}
}

// TestProxyRevision: a weights-only push re-sends RDS alone, so the other
// types keep the revision they were last sent at, and a commit that does not
// touch a class sends it nothing; a SYNCED proxy runs the live revision all
// the same. A proxy that is not SYNCED reports the newest revision it ACKed,
// whatever the order of the type columns.
func TestProxyRevision(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	acked := func(typeURL, rev string, at time.Duration) apiv1.TypeStatus {
		return apiv1.TypeStatus{TypeURL: typeURL, Status: apiv1.Synced, AckedRevision: rev, AckedAt: t0.Add(at)}
	}
	weightsOnly := []apiv1.TypeStatus{
		acked(resource.ListenerType, "r1", 0), acked(resource.RouteType, "r2", time.Minute),
		acked(resource.ClusterType, "r1", 0), acked(resource.EndpointType, "r1", time.Second),
		acked(resource.SecretType, "r1", 0)}
	tests := []struct {
		name   string
		status apiv1.SyncStatus
		live   string
		types  []apiv1.TypeStatus
		want   string
	}{
		{"synced after a weights-only push", apiv1.Synced, "r2", weightsOnly, "r2"},
		{"synced, untouched by the live revision", apiv1.Synced, "r3", weightsOnly, "r3"},
		{"stale: the newest acked", apiv1.Stale, "r3", weightsOnly, "r2"},
		{"nacked, an ack of an older response has no revision", apiv1.Nacked, "r4",
			[]apiv1.TypeStatus{acked(resource.ClusterType, "", time.Hour), acked(resource.EndpointType, "r3", 0)}, "r3"},
		{"nothing acked", apiv1.NotSent, "r1", []apiv1.TypeStatus{{TypeURL: resource.ClusterType, Status: apiv1.NotSent}}, ""},
	}
	for _, tt := range tests {
		if got := proxyRevision(tt.status, tt.live, tt.types); got != tt.want {
			t.Errorf("%s: proxyRevision = %q, want %q", tt.name, got, tt.want)
		}
	}
}
