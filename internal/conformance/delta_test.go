package conformance

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/gitmesh/gitmesh/render"
)

// grpc-go (v1.85) speaks only state-of-the-world ADS, so delta xDS cannot be
// exercised with a grpc-go client. deltaClient stands in for one the way a
// proxyless client behaves: it subscribes by name, starting from the
// listeners it would dial, and follows every reference (listener → route
// config → clusters → assignments) the way grpc-go resolves them, decoding
// the real protos. A name that is referenced but never delivered, or a
// response that does not match the rendered bundle, fails the test.
type deltaClient struct {
	t      testing.TB
	stream discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	recv   chan *discovery.DeltaDiscoveryResponse
	errc   chan error
	node   *core.Node
	// have maps type URL → name → the resource as last received.
	have map[string]map[string]*discovery.Resource
	// subscribed maps type URL → names asked for.
	subscribed map[string]map[string]bool
}

func newDeltaClient(t testing.TB, addr, nodeID string) *deltaClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); cc.Close() })
	st, err := discovery.NewAggregatedDiscoveryServiceClient(cc).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatalf("open delta stream: %v", err)
	}
	c := &deltaClient{t: t, stream: st, recv: make(chan *discovery.DeltaDiscoveryResponse, 16), errc: make(chan error, 1),
		node: &core.Node{Id: nodeID}, have: map[string]map[string]*discovery.Resource{}, subscribed: map[string]map[string]bool{}}
	go func() {
		for {
			r, err := st.Recv()
			if err != nil {
				c.errc <- err
				return
			}
			c.recv <- r
		}
	}()
	return c
}

// send writes one request; the node goes on every request (allowed, and
// simpler than tracking the first).
func (c *deltaClient) send(req *discovery.DeltaDiscoveryRequest) {
	c.t.Helper()
	req.Node = c.node
	if err := c.stream.Send(req); err != nil {
		c.t.Fatalf("delta send: %v", err)
	}
}

// subscribe asks for names of typeURL not asked for yet.
func (c *deltaClient) subscribe(typeURL string, names ...string) {
	c.t.Helper()
	if c.subscribed[typeURL] == nil {
		c.subscribed[typeURL] = map[string]bool{}
	}
	var fresh []string
	for _, n := range names {
		if !c.subscribed[typeURL][n] {
			c.subscribed[typeURL][n] = true
			fresh = append(fresh, n)
		}
	}
	if len(fresh) > 0 {
		sort.Strings(fresh)
		c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: fresh})
	}
}

// next returns the next response, failing after waitLimit.
func (c *deltaClient) next() *discovery.DeltaDiscoveryResponse {
	c.t.Helper()
	select {
	case r := <-c.recv:
		return r
	case err := <-c.errc:
		c.t.Fatalf("delta stream ended: %v", err)
	case <-time.After(waitLimit):
		c.t.Fatalf("no delta response within %v; missing: %v", waitLimit, c.missing())
	}
	return nil
}

// handle stores and ACKs one response and subscribes to what it references.
func (c *deltaClient) handle(r *discovery.DeltaDiscoveryResponse) {
	c.t.Helper()
	typeURL := r.GetTypeUrl()
	if c.have[typeURL] == nil {
		c.have[typeURL] = map[string]*discovery.Resource{}
	}
	refs := map[string][]string{}
	for _, res := range r.GetResources() {
		c.have[typeURL][res.GetName()] = res
		for t, names := range references(c.t, typeURL, res) {
			refs[t] = append(refs[t], names...)
		}
	}
	for _, name := range r.GetRemovedResources() {
		delete(c.have[typeURL], name)
	}
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: typeURL, ResponseNonce: r.GetNonce()})
	for _, t := range []string{resource.RouteType, resource.ClusterType, resource.EndpointType} {
		c.subscribe(t, refs[t]...)
	}
}

// walk subscribes to listeners and follows references until everything
// asked for has arrived.
func (c *deltaClient) walk(listeners ...string) {
	c.t.Helper()
	c.subscribe(resource.ListenerType, listeners...)
	for len(c.missing()) > 0 {
		c.handle(c.next())
	}
}

// missing lists subscribed names not received yet.
func (c *deltaClient) missing() []string {
	var out []string
	for typeURL, names := range c.subscribed {
		for n := range names {
			if c.have[typeURL][n] == nil {
				out = append(out, shortType(typeURL)+" "+n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// references decodes one resource and returns the names it needs, by type.
func references(t testing.TB, typeURL string, res *discovery.Resource) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	switch typeURL {
	case resource.ListenerType:
		var l listenerv3.Listener
		var h hcmv3.HttpConnectionManager
		unmarshal(t, res, &l)
		if err := l.GetApiListener().GetApiListener().UnmarshalTo(&h); err != nil {
			t.Fatalf("listener %q: api_listener is not an HTTP connection manager: %v", res.GetName(), err)
		}
		if rds := h.GetRds().GetRouteConfigName(); rds != "" {
			out[resource.RouteType] = append(out[resource.RouteType], rds)
		}
	case resource.RouteType:
		var rc routev3.RouteConfiguration
		unmarshal(t, res, &rc)
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				a := r.GetRoute()
				if c := a.GetCluster(); c != "" {
					out[resource.ClusterType] = append(out[resource.ClusterType], c)
				}
				for _, wc := range a.GetWeightedClusters().GetClusters() {
					out[resource.ClusterType] = append(out[resource.ClusterType], wc.GetName())
				}
			}
		}
	case resource.ClusterType:
		var cl clusterv3.Cluster
		unmarshal(t, res, &cl)
		if cl.GetType() == clusterv3.Cluster_EDS {
			name := cl.GetEdsClusterConfig().GetServiceName()
			if name == "" {
				name = cl.GetName()
			}
			out[resource.EndpointType] = append(out[resource.EndpointType], name)
		}
	}
	return out
}

func unmarshal(t testing.TB, res *discovery.Resource, m proto.Message) {
	t.Helper()
	if err := res.GetResource().UnmarshalTo(m); err != nil {
		t.Fatalf("resource %q: %v", res.GetName(), err)
	}
}

// matchesBundle checks that everything received is byte for byte what
// render produced for the class, with the same version.
func (c *deltaClient) matchesBundle(p *render.Proxy) {
	c.t.Helper()
	n := 0
	for typeURL, byName := range c.have {
		for name, got := range byName {
			i := slices.IndexFunc(p.Resources(typeURL), func(r *render.Resource) bool { return r.Name == name })
			if i < 0 {
				c.t.Errorf("delta delivered %s %q, which class %s does not have", shortType(typeURL), name, p.Class)
				continue
			}
			want := p.Resources(typeURL)[i]
			if got.GetVersion() != want.Version || !bytes.Equal(got.GetResource().GetValue(), want.Bytes()) {
				c.t.Errorf("delta %s %q: version %q, want %q (or bytes differ)", shortType(typeURL), name, got.GetVersion(), want.Version)
			}
			n++
		}
	}
	c.t.Logf("delta walk received %d resources, all identical to the rendered bundle", n)
}
