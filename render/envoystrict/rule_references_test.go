package envoystrict

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/gitmesh/gitmesh/schema/model"
	"google.golang.org/protobuf/types/known/durationpb"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

func TestRuleReferences(t *testing.T) {
	drop := func(ms []proto.Message, name string) []proto.Message {
		var out []proto.Message
		for _, m := range ms {
			if nameOf(m) != name {
				out = append(out, m)
			}
		}
		return out
	}
	withoutRC := func() []proto.Message {
		var out []proto.Message
		for _, m := range valid(t) {
			if nameOf(m) != "r" {
				out = append(out, m)
			}
		}
		return out
	}
	apiListener := &listenerv3.Listener{Name: "api", ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, hcm(t, "missing"))}}
	withSecret := func(name string) *clusterv3.Cluster {
		c := edsCluster("c")
		c.TransportSocket = &corev3.TransportSocket{Name: "tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t,
			&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: name}}}})}}
		return c
	}
	served := Options{SecretServed: func(n string) bool { return n == "default" }}
	runCases(t, []ruleCase{
		{name: "RDS name not rendered", code: CodeDangling, want: `uses route config "r", which is not rendered`, own: withoutRC()},
		{name: "cluster missing", code: CodeDangling, want: `routes to cluster "c", which does not exist`, own: drop(valid(t), "c")},
		{name: "EDS assignment missing", code: CodeDangling, want: `has no endpoint assignment "c"`,
			own: msgs(httpListener(t, "l", "0.0.0.0", 80, "r"), routeConfig("r", "c", []string{"a"}), edsCluster("c"))},
		{name: "inside an API listener", code: CodeDangling, want: `route config "missing"`, own: with(t, apiListener)},
		{name: "tcp_proxy cluster", code: CodeDangling, want: `cluster "gone"`, own: with(t, tcpListener(t, "t", "0.0.0.0", 81, "gone"))},
		{name: "shared layer resolved by the class's own", shared: msgs(httpListener(t, "l", "0.0.0.0", 80, "r"), routeConfig("r", "c", []string{"a"})),
			own: msgs(edsCluster("c"), assignment("c"))},
		{name: "secret not served", code: CodeSecret, want: `uses secret "gw-cert", which is not served`, own: with(t, withSecret("gw-cert")), opt: served},
		{name: "secret served", own: with(t, withSecret("default")), opt: served},
		{name: "cluster path from RefPath", code: CodeDangling, want: `cluster "c"`, own: drop(valid(t), "c"),
			opt: Options{RefPath: func(string) string { return "services.a.routes[0]" }}},
	})
}

// TestSharedFindingsOnce: a dangling name inside a shared layer is
// reported once, naming the first class, however many classes have it.
func TestSharedFindingsOnce(t *testing.T) {
	shared := set(httpListener(t, "l", "0.0.0.0", 80, "r"), routeConfig("r", "gone", []string{"a"}))
	c := New(Options{})
	c.Check(Class{Name: "a", Shared: shared, Own: set()})
	c.Check(Class{Name: "b", Shared: shared, Own: set()})
	ds := c.Diagnostics()
	if len(ds) != 1 || ds[0].Code != CodeDangling {
		t.Fatalf("want one GM0803, got:\n%v", ds)
	}
	if want := `proxy "a"`; !contains(ds[0].Message, want) {
		t.Errorf("finding names %q, want %s", ds[0].Message, want)
	}
}

// TestPositions: findings carry the resource's model path, or the route's
// when RoutePath knows it, positioned by Pos.
func TestPositions(t *testing.T) {
	rc := routeConfig("r", "c", []string{"a"}, []string{"a"})
	rc.VirtualHosts[0].Routes[0].GetRoute().Timeout = nil
	ds := Check(Class{Name: "x", Own: set(with(t, rc)...)}, Options{
		Pos: func(p string) model.Pos { return model.Pos{File: p + ".cue", Line: 3, Col: 1} },
	})
	if len(ds) != 1 || ds[0].Pos.File != "p.cue" || ds[0].Path != "p" {
		t.Fatalf("want one finding at p.cue, got %+v", ds)
	}
}

// TestRoutePositions: a finding about one route is positioned at the
// route's model path (Options.RoutePath), not the route config's.
func TestRoutePositions(t *testing.T) {
	rc := routeConfig("r", "c", []string{"a"})
	rt := rc.VirtualHosts[0].Routes[0]
	rt.GetRoute().Timeout = &durationpb.Duration{Seconds: -1}
	ds := Check(Class{Name: "x", Own: set(with(t, rc)...)}, Options{
		RoutePath: func(r *routev3.Route) string {
			if r == rt {
				return "services.a.routes[2]"
			}
			return ""
		},
		Pos: func(p string) model.Pos { return model.Pos{File: "a.cue", Line: len(p)} },
	})
	if len(ds) != 1 || ds[0].Path != "services.a.routes[2]" || ds[0].Pos.Line != len("services.a.routes[2]") {
		t.Fatalf("want one finding at services.a.routes[2], got %+v", ds)
	}
}
