package envoystrict

import (
	"sort"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Builders of small, valid resources; each rule's cases break one thing.

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func addr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
}

func routerFilter(t testing.TB) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}
}

// hcm is an HCM with RDS rds (or an inline config when rc is set) and the
// router.
func hcm(t testing.TB, rds string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix:     "s",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: ads(), RouteConfigName: rds}},
		HttpFilters:    []*hcmv3.HttpFilter{routerFilter(t)},
	}
}

func hcmNetFilter(t testing.TB, h *hcmv3.HttpConnectionManager) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}}
}

func tcpFilter(t testing.TB, cluster string) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t,
		&tcpproxyv3.TcpProxy{StatPrefix: "t", ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster}})}}
}

// httpListener listens on ip:port with one chain: HCM → RDS rds.
func httpListener(t testing.TB, name, ip string, port uint32, rds string) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:         name,
		Address:      addr(ip, port),
		FilterChains: []*listenerv3.FilterChain{{Name: name, Filters: []*listenerv3.Filter{hcmNetFilter(t, hcm(t, rds))}}},
	}
}

// tcpListener listens on ip:port and forwards to cluster.
func tcpListener(t testing.TB, name, ip string, port uint32, cluster string) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:         name,
		Address:      addr(ip, port),
		FilterChains: []*listenerv3.FilterChain{{Name: name, Filters: []*listenerv3.Filter{tcpFilter(t, cluster)}}},
	}
}

// routeTo is a catch-all route to cluster.
func routeTo(cluster string) *routev3.Route {
	return &routev3.Route{
		Name:   "r",
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
	}
}

// routeConfig has one virtual host per domain list, each routing to cluster.
func routeConfig(name, cluster string, domains ...[]string) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: name}
	for i, d := range domains {
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
			Name: name + "-vh" + string(rune('0'+i)), Domains: d, Routes: []*routev3.Route{routeTo(cluster)},
		})
	}
	return rc
}

// edsCluster is an EDS cluster over ADS.
func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()},
	}
}

func assignment(name string) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name}
}

// valid is a small class every rule accepts: a listener on 0.0.0.0:80
// with RDS "r", route config "r" to cluster "c", EDS cluster "c" and its
// assignment.
func valid(t testing.TB) []proto.Message {
	return []proto.Message{
		httpListener(t, "l", "0.0.0.0", 80, "r"),
		routeConfig("r", "c", []string{"a", "a:80"}),
		edsCluster("c"),
		assignment("c"),
	}
}

// set files messages by type and name, as render hands them over.
func set(ms ...proto.Message) *Set {
	by := map[string][]*Resource{}
	for _, m := range ms {
		r := &Resource{Message: m, Path: "p"}
		switch m := m.(type) {
		case *listenerv3.Listener:
			r.TypeURL, r.Name = resource.ListenerType, m.Name
		case *routev3.RouteConfiguration:
			r.TypeURL, r.Name = resource.RouteType, m.Name
		case *clusterv3.Cluster:
			r.TypeURL, r.Name = resource.ClusterType, m.Name
		case *endpointv3.ClusterLoadAssignment:
			r.TypeURL, r.Name = resource.EndpointType, m.ClusterName
		}
		by[r.TypeURL] = append(by[r.TypeURL], r)
	}
	for _, rs := range by {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	}
	return NewSet(by)
}

// ruleCase is one table row: a class, and the finding it must produce
// (code and a part of the message), or none when code is "".
type ruleCase struct {
	name    string
	own     []proto.Message
	shared  []proto.Message
	capture *Capture
	opt     Options
	code    string
	want    string
}

// runCases checks each case alone.
func runCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := Class{Name: "sidecar/ns/svc/v1", Own: set(tc.own...), Capture: tc.capture}
			if tc.shared != nil {
				cl.Shared = set(tc.shared...)
			}
			ds := Check(cl, tc.opt)
			checkFindings(t, ds, tc.code, tc.want)
		})
	}
}

// checkFindings wants no finding when code is "", else one with code
// whose message contains want, and no finding with another code.
func checkFindings(t *testing.T, ds model.Diagnostics, code, want string) {
	t.Helper()
	if code == "" {
		if len(ds) > 0 {
			t.Fatalf("want no finding, got:\n%v", ds)
		}
		return
	}
	found := false
	for _, d := range ds {
		if d.Code != code {
			t.Errorf("unexpected finding %s: %s", d.Code, d.Message)
			continue
		}
		if d.Severity != model.SeverityError {
			t.Errorf("%s: severity %v, want error", d.Code, d.Severity)
		}
		found = found || strings.Contains(d.Message, want)
	}
	if !found {
		t.Fatalf("want %s containing %q, got:\n%v", code, want, ds)
	}
}

// with returns valid(t) with ms replacing same-named resources of the
// same type, or added.
func with(t testing.TB, ms ...proto.Message) []proto.Message {
	out := valid(t)
	for _, m := range ms {
		replaced := false
		for i, o := range out {
			if o.ProtoReflect().Descriptor() == m.ProtoReflect().Descriptor() && nameOf(o) == nameOf(m) {
				out[i], replaced = m, true
			}
		}
		if !replaced {
			out = append(out, m)
		}
	}
	return out
}

func nameOf(m proto.Message) string {
	switch m := m.(type) {
	case *listenerv3.Listener:
		return m.Name
	case *routev3.RouteConfiguration:
		return m.Name
	case *clusterv3.Cluster:
		return m.Name
	case *endpointv3.ClusterLoadAssignment:
		return m.ClusterName
	}
	return ""
}

func TestValidClassPasses(t *testing.T) {
	runCases(t, []ruleCase{{name: "valid", own: valid(t)}})
}

// msgs is a message list.
func msgs(ms ...proto.Message) []proto.Message { return ms }

// setMatcher gives l an (empty) filter_chain_matcher, without importing
// the xds matcher package for one empty message.
func setMatcher(l *listenerv3.Listener) {
	m := l.ProtoReflect()
	m.Mutable(m.Descriptor().Fields().ByName("filter_chain_matcher"))
}

// tcpFilterOf wraps a tcp_proxy config as a network filter.
func tcpFilterOf(t testing.TB, tp *tcpproxyv3.TcpProxy) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, tp)}}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
