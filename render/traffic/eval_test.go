package traffic

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema/model"
)

// A small hand-built world: one sidecar class "sidecar/default/app/v1"
// calling service "db" (VIP 10.96.0.9) and "web" (no workload behind it),
// so each test can break one rule of the evaluation itself. These configs
// are written by hand on purpose: they are Envoy config render does not
// emit (several listeners on one port, faults on a bare route), which is
// the point of a rule test.

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func sock(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

func tcpListener(t *testing.T, name, addr string, port uint32, cluster string) *listenerv3.Listener {
	return &listenerv3.Listener{Name: name, Address: sock(addr, port), BindToPort: wrapperspb.Bool(false), FilterChains: []*listenerv3.FilterChain{{
		Filters: []*listenerv3.Filter{{Name: "tcp", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &tcpv3.TcpProxy{StatPrefix: name, ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: cluster}})}}},
	}}}
}

func staticCluster(name string, addrs ...string) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment) {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	var lbs []*endpointv3.LbEndpoint
	for _, a := range addrs {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: sock(a, 5432)}}})
	}
	cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}
	return &clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: name}}, cla
}

func testWorld() *World {
	m := &model.Mesh{Mesh: model.MeshConfig{TrustDomain: "cluster.local", ClusterDomain: "cluster.local", VIPRange: ""},
		Services: map[string]*model.Service{
			"app": {Name: "app", Namespace: "default", ServiceAccount: "app", Proxy: model.ProxyNone, Ports: []model.Port{{Name: "http", Number: 8080, TargetPort: 8080, Protocol: "http"}},
				Versions: map[string]*model.Version{"v1": {Name: "v1"}}},
			"db": {Name: "db", Namespace: "default", ServiceAccount: "db", Proxy: model.ProxyNone, Addresses: []string{"10.96.0.9"},
				Ports: []model.Port{{Name: "pg", Number: 5432, TargetPort: 5432, Protocol: "tcp"}},
				Versions: map[string]*model.Version{
					"v1": {Name: "v1", Endpoints: []model.Endpoint{{Address: "10.0.0.1"}}},
					"v2": {Name: "v2", Endpoints: []model.Endpoint{{Address: "10.0.0.2"}, {Address: "10.0.0.3"}}},
				}},
		}}
	return NewWorld(m, nil, nil)
}

func outbound(t *testing.T) *listenerv3.Listener {
	return &listenerv3.Listener{Name: "virtualOutbound", Address: sock("0.0.0.0", 15001), UseOriginalDst: wrapperspb.Bool(true),
		DefaultFilterChain: &listenerv3.FilterChain{Name: "catchall", Filters: []*listenerv3.Filter{{Name: "tcp", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &tcpv3.TcpProxy{StatPrefix: "bh", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: render.BlackHoleCluster}})}}}}}
}

func eval(t *testing.T, cfg *Config, req string, headers map[string]string) *Outcome {
	t.Helper()
	r, err := model.ParseRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	cfgs := func(class string) *Config {
		if class == "sidecar/default/app/v1" {
			return cfg
		}
		return nil
	}
	// The class is not in the model as a sidecar (app has proxy none), so
	// the world has no identity for it; Evaluate needs only the config.
	o, err := Evaluate(cfgs, testWorld(), "sidecar/default/app/v1", Request{Request: r, Headers: headers})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// use_original_dst: the exact VIP:PORT listener wins over 0.0.0.0:PORT;
// without either the capturing listener's own chains (black hole) take it.
func TestOriginalDestination(t *testing.T) {
	c1, e1 := staticCluster("db-v1", "10.0.0.1")
	c2, e2 := staticCluster("db-v2", "10.0.0.2", "10.0.0.3")
	cfg := NewConfig().Add(outbound(t),
		tcpListener(t, "0.0.0.0_5432", "0.0.0.0", 5432, "db-v1"),
		tcpListener(t, "10.96.0.9_5432", "10.96.0.9", 5432, "db-v2"),
		c1, e1, c2, e2, &clusterv3.Cluster{Name: render.BlackHoleCluster})
	if o := eval(t, cfg, "tcp://db.default:5432", nil); o.To["db/v2"] != 100 {
		t.Errorf("VIP listener: %s", Text(o))
	}
	if o := eval(t, cfg, "tcp://10.1.1.1:5432", nil); o.To["db/v1"] != 100 {
		t.Errorf("wildcard listener: %s", Text(o))
	}
	if o := eval(t, cfg, "tcp://10.1.1.1:3306", nil); o.NoRoute != 100 {
		t.Errorf("no listener: %s", Text(o))
	}
}

func httpConfig(t *testing.T, route *routev3.Route, filters ...*hcmv3.HttpFilter) *Config {
	hcm := &hcmv3.HttpConnectionManager{StatPrefix: "out", RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
		Name: "8080", VirtualHosts: []*routev3.VirtualHost{{Name: "web", Domains: []string{"web:8080"}, Routes: []*routev3.Route{route}}}}},
		HttpFilters: append(filters, &hcmv3.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}})}
	l := &listenerv3.Listener{Name: "0.0.0.0_8080", Address: sock("0.0.0.0", 8080), BindToPort: wrapperspb.Bool(false), FilterChains: []*listenerv3.FilterChain{{
		Filters: []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}}}}}}
	c1, e1 := staticCluster("db-v1", "10.0.0.1")
	c2, e2 := staticCluster("db-v2", "10.0.0.2", "10.0.0.3")
	return NewConfig().Add(outbound(t), l, c1, e1, c2, e2)
}

// Weighted clusters share by weight over their sum; endpoints of one
// version are one workload.
func TestWeightedClusters(t *testing.T) {
	route := &routev3.Route{Name: "split", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
			{Name: "db-v1", Weight: wrapperspb.UInt32(1)}, {Name: "db-v2", Weight: wrapperspb.UInt32(3)}, {Name: "db-v1", Weight: wrapperspb.UInt32(0)},
		}}}}}}
	o := eval(t, httpConfig(t, route), "GET http://web:8080/", nil)
	if o.To["db/v1"] != 25 || o.To["db/v2"] != 75 {
		t.Errorf("got %s", Shares(o.To))
	}
	if o.Timeout == nil || *o.Timeout != envoyDefaultTimeout {
		t.Errorf("timeout %v, want Envoy's default 15s", o.Timeout)
	}
}

// A fault abort answers its share; the rest goes on; the route still
// counts every request as routed to its destination.
func TestFaultAbort(t *testing.T) {
	fault := &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 503},
		Percentage: &typev3.FractionalPercent{Numerator: 250000, Denominator: typev3.FractionalPercent_MILLION}},
		Delay: &faultcommonv3.FaultDelay{FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(2e9)}, Percentage: &typev3.FractionalPercent{Numerator: 10}}}
	route := &routev3.Route{Name: "r", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action:               &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "db-v1"}, Timeout: durationpb.New(3e9)}},
		TypedPerFilterConfig: map[string]*anypb.Any{"envoy.filters.http.fault": mustAny(t, fault)}}
	faultFilter := &hcmv3.HttpFilter{Name: "envoy.filters.http.fault", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &faultv3.HTTPFault{})}}
	o := eval(t, httpConfig(t, route, faultFilter), "GET http://web:8080/", nil)
	if o.Status[503] != 25 || o.To["db/v1"] != 100 || *o.Timeout != 3*model.Second {
		t.Errorf("got %s", Summary(o))
	}
	// Without the fault filter in the chain the per-route config does
	// nothing.
	o = eval(t, httpConfig(t, route), "GET http://web:8080/", nil)
	if len(o.Status) != 0 {
		t.Errorf("fault without its filter: %s", Summary(o))
	}
}

// A direct response answers; an unknown host is a 404 with no route.
func TestDirectResponseAndNoVirtualHost(t *testing.T) {
	route := &routev3.Route{Name: "dr", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/teapot"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 418}}}
	cfg := httpConfig(t, route)
	if o := eval(t, cfg, "GET http://web:8080/teapot", nil); o.Status[418] != 100 {
		t.Errorf("direct response: %s", Summary(o))
	}
	if o := eval(t, cfg, "GET http://web:8080/other", nil); o.Status[404] != 100 || o.NoRoute != 100 {
		t.Errorf("no route: %s", Summary(o))
	}
	if o := eval(t, cfg, "GET http://elsewhere:8080/teapot", nil); o.Status[404] != 100 || o.NoRoute != 100 {
		t.Errorf("no virtual host: %s", Summary(o))
	}
}

// The verdict rules of Check.
func TestCheck(t *testing.T) {
	d := func(s model.Duration) *model.Duration { return &s }
	o := &Outcome{To: map[string]float64{"reviews/v1": 50, "reviews/v3": 50}, Status: map[int]float64{503: 1}, Timeout: d(10 * model.Second), Retries: &model.TestRetries{Attempts: 3, PerTryTimeout: d(2 * model.Second)}}
	for _, c := range []struct {
		name string
		x    model.TrafficExpect
		want string
	}{
		{"exact split", model.TrafficExpect{To: map[string]float64{"reviews/v1": 50, "reviews/v3": 50}}, ""},
		{"whole service", model.TrafficExpect{To: map[string]float64{"reviews": 100}}, ""},
		{"wrong split", model.TrafficExpect{To: map[string]float64{"reviews/v1": 100}}, "expected reviews/v1 100%, got reviews/v1 50% reviews/v3 50%"},
		{"tolerance", model.TrafficExpect{To: map[string]float64{"reviews/v1": 45, "reviews/v3": 55}, Tolerance: 5}, ""},
		{"destination outside the keys", model.TrafficExpect{To: map[string]float64{"reviews/v1": 50}}, "expected reviews/v1 50%, got reviews/v1 50% reviews/v3 50%"},
		{"status share", model.TrafficExpect{Status: 503, StatusPercent: 1}, ""},
		{"status defaults to every request", model.TrafficExpect{Status: 503}, "expected status 503 for 100% of requests, got status 503 1%, routed to reviews/v1 50% reviews/v3 50%"},
		{"timeout", model.TrafficExpect{Timeout: d(5 * model.Second)}, "expected timeout 5s, got 10s"},
		{"retries", model.TrafficExpect{Retries: &model.TestRetries{Attempts: 2}}, "expected 2 retries, got 3"},
		{"per-try timeout", model.TrafficExpect{Retries: &model.TestRetries{Attempts: 3, PerTryTimeout: d(model.Second)}}, "expected per-try timeout 1s, got 2s"},
		{"no route expected", model.TrafficExpect{NoRoute: true}, "expected no route, got 0% unrouted"},
	} {
		got := ""
		if p := Check(c.x, o); len(p) > 0 {
			got = p[0]
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	denied := &Outcome{To: map[string]float64{"details/v1": 100}, Status: map[int]float64{403: 100}}
	if p := Check(model.TrafficExpect{To: map[string]float64{"details/v1": 100}}, denied); len(p) != 1 || p[0] != "expected the request to go through, got status 403 100%, routed to details/v1 100%" {
		t.Errorf("a refused request passes a test without status: %q", p)
	}
}
