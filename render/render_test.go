package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/schema/model"
)

// TestDeterministic renders every case twice from separately loaded models
// and requires identical bytes and versions for every resource.
func TestDeterministic(t *testing.T) {
	for _, name := range cases(t) {
		t.Run(name, func(t *testing.T) {
			a, err := Render(Input{Mesh: loadCase(t, name)})
			if err != nil {
				t.Fatal(err)
			}
			b, err := Render(Input{Mesh: loadCase(t, name)})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(a.Classes(), ",") != strings.Join(b.Classes(), ",") {
				t.Fatalf("classes differ: %v vs %v", a.Classes(), b.Classes())
			}
			for _, c := range a.Classes() {
				pa, pb := a.Proxy(c), b.Proxy(c)
				if pa.Version() != pb.Version() {
					t.Errorf("%s: proxy version %s vs %s", c, pa.Version(), pb.Version())
				}
				for _, typ := range snapshot.Rendered() {
					ra, rb := pa.Resources(typ), pb.Resources(typ)
					if len(ra) != len(rb) {
						t.Fatalf("%s %s: %d vs %d resources", c, typ, len(ra), len(rb))
					}
					for i := range ra {
						if ra[i].Name != rb[i].Name || ra[i].Version != rb[i].Version || !bytes.Equal(ra[i].Bytes(), rb[i].Bytes()) {
							t.Errorf("%s %s %q: not byte-identical", c, typ, ra[i].Name)
						}
					}
				}
				da, err := ConfigDump(pa)
				if err != nil {
					t.Fatal(err)
				}
				db, _ := ConfigDump(pb)
				if !bytes.Equal(da, db) {
					t.Errorf("%s: config dumps differ", c)
				}
			}
		})
	}
}

// TestSharedClusters checks that a cluster many proxies see is one
// Resource, shared by pointer, not a copy per proxy.
func TestSharedClusters(t *testing.T) {
	b, err := Render(Input{Mesh: loadCase(t, "bookinfo")})
	if err != nil {
		t.Fatal(err)
	}
	find := func(class, name string) *Resource {
		p := b.Proxy(class)
		if p == nil {
			t.Fatalf("no class %q in %v", class, b.Classes())
		}
		for _, r := range p.Resources(resource.ClusterType) {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("%s has no cluster %q", class, name)
		return nil
	}
	const ratings = "outbound|9080||ratings.default.svc.cluster.local"
	if find("sidecar/default/reviews/v2", ratings) != find("sidecar/default/reviews/v3", ratings) {
		t.Error("ratings cluster is not shared between reviews v2 and v3")
	}
	const pp = "outbound|9080||productpage.default.svc.cluster.local"
	if find("ingress/bookinfo-gateway", pp) == nil {
		t.Error("missing")
	}
	if find("sidecar/default/productpage/v1", StatsCluster) != find("ingress/bookinfo-gateway", StatsCluster) {
		t.Error("stats cluster is not shared between a sidecar and a gateway")
	}
}

// TestBrokenModel forces models past policies that a policy check would
// reject and requires positioned diagnostics, never a panic.
func TestBrokenModel(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(m *model.Mesh)
		code   string
		pos    string
		path   string // "" checks no path
		msg    string
	}{
		{
			name:   "route to a missing version",
			break_: func(m *model.Mesh) { m.Services["backend"].Routes[0].To[1].Version = "v9" },
			code:   CodeDangling,
			pos:    "weights.cue:",
			msg:    `routes to cluster "outbound|9080|v9|backend.default.svc.cluster.local", which does not exist`,
		},
		{
			name:   "route to a missing service",
			break_: func(m *model.Mesh) { m.Services["backend"].Routes[0].To[0].Service = "nope" },
			code:   CodeUnresolved,
			pos:    "weights.cue:",
			msg:    `unknown service "nope"`,
		},
		{
			name: "all weights zero",
			break_: func(m *model.Mesh) {
				m.Services["backend"].Routes[0].To[0].Weight = 0
				m.Services["backend"].Routes[0].To[1].Weight = 0
			},
			code: CodeWeights,
			msg:  "weights total 0",
		},
		{
			name: "bad regex",
			break_: func(m *model.Mesh) {
				m.Services["backend"].Routes[0].Match = []model.Match{{Path: &model.StringMatch{Regex: "(["}}}
			},
			code: CodeInvalidValue,
			msg:  `invalid regex "(["`,
		},
		{
			// The header name is quoted once, as the loader's paths are,
			// so the finding has the route's position.
			name: "bad header regex",
			break_: func(m *model.Mesh) {
				m.Services["backend"].Routes[0].Match = []model.Match{{Headers: map[string]model.StringMatch{"x-user": {Regex: "a(b"}}}}
			},
			code: CodeInvalidValue,
			pos:  "weights.cue:",
			path: `services.backend.routes[0].match[0].headers."x-user".regex`,
			msg:  `invalid regex "a(b": missing closing )`,
		},
		{
			name: "connection limit past uint32",
			break_: func(m *model.Mesh) {
				m.Services["backend"].TrafficPolicy = &model.TrafficPolicy{ConnectionPool: &model.ConnectionPool{MaxConnections: 1<<32 + 1}}
			},
			code: CodeInvalidValue,
			pos:  "weights.cue:",
			path: "services.backend.trafficPolicy.connectionPool.maxConnections",
			msg:  "4294967297 does not fit Envoy's uint32 field (at most 4294967295)",
		},
		{
			name: "unserved credential",
			break_: func(m *model.Mesh) {
				m.Gateways = map[string]*model.Gateway{"gw": {Name: "gw", Kind: model.GatewayIngress, Namespace: "default", ServiceAccount: "gw",
					Listeners: []model.GatewayListener{{Name: "https", Port: 443, Protocol: model.ProtocolHTTPS, Hosts: []string{"*"},
						TLS: &model.GatewayTLS{Mode: model.TLSSimple, CredentialName: "missing"}}},
					Routes: []model.Route{{Name: "r", To: []model.Destination{{Service: "backend", Weight: 100}}}}}}
			},
			code: CodeSecret,
			msg:  `uses secret "missing", which is not served`,
		},
		{
			name: "external via an unknown gateway",
			break_: func(m *model.Mesh) {
				m.External = map[string]*model.External{"x": {Name: "x", Hosts: []string{"x.example.com"}, Resolution: "DNS", Via: "nope",
					Ports: []model.Port{{Name: "http", Number: 80, Protocol: model.ProtocolHTTP}}}}
				m.Services["frontend"].DependsOn = []string{"backend", "x"}
			},
			code: CodeUnresolved,
			msg:  `unknown egress gateway "nope"`,
		},
		{
			name:   "route to a missing port",
			break_: func(m *model.Mesh) { m.Services["backend"].Routes[0].To[0].Port = 1234 },
			code:   CodeUnresolved,
			pos:    "weights.cue:",
			msg:    `"backend" has no port 1234`,
		},
		{
			name:   "route timeout negative",
			break_: func(m *model.Mesh) { m.Services["backend"].Routes[0].Timeout = -model.Second },
			code:   CodeTimeout,
			msg:    "negative timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadCase(t, "weights")
			tt.break_(m)
			in := Input{Mesh: m}
			if tt.code == CodeSecret {
				in.Credentials = map[string]bool{"other": true}
			}
			b, err := Render(in)
			if err == nil {
				t.Fatalf("rendered %d classes, want an error", len(b.Classes()))
			}
			ds, ok := err.(model.Diagnostics)
			if !ok {
				t.Fatalf("error is %T, want model.Diagnostics: %v", err, err)
			}
			found := false
			for _, d := range ds {
				if d.Code == tt.code && strings.Contains(d.Message, tt.msg) && strings.HasPrefix(d.Pos.String(), tt.pos) &&
					(tt.path == "" || d.Path == tt.path) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want %s %q at %q, got:\n%v", tt.code, tt.msg, tt.pos, ds)
			}
			t.Logf("%v", ds)
		})
	}
}

// TestNilMesh is the smallest broken input.
func TestNilMesh(t *testing.T) {
	if _, err := Render(Input{}); err == nil {
		t.Fatal("want an error")
	}
}

// TestDiscoveredEndpoints checks that run-time endpoints replace a
// version's static ones in its assignment and in the all-versions one.
func TestDiscoveredEndpoints(t *testing.T) {
	in := Input{
		Mesh:      loadCase(t, "weights"),
		Endpoints: map[string][]model.Endpoint{"backend/v2": {{Address: "10.9.9.9"}, {Address: "10.9.9.8", Weight: 2}}},
	}
	b, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range b.Proxy("sidecar/default/frontend/v1").Resources(resource.EndpointType) {
		raw, err := StableJSON(r.Message)
		if err != nil {
			t.Fatal(err)
		}
		got[r.Name] = string(raw)
	}
	v2 := got["outbound|9080|v2|backend.default.svc.cluster.local"]
	all := got["outbound|9080||backend.default.svc.cluster.local"]
	for _, want := range []string{"10.9.9.9", "10.9.9.8", `"load_balancing_weight": 3`} {
		if !strings.Contains(v2, want) {
			t.Errorf("v2 assignment lacks %s:\n%s", want, v2)
		}
	}
	if strings.Contains(v2, "10.0.1.2") {
		t.Errorf("v2 assignment still has the static endpoint:\n%s", v2)
	}
	if !strings.Contains(all, "10.0.1.1") || !strings.Contains(all, "10.9.9.9") {
		t.Errorf("all-versions assignment should hold v1's static and v2's discovered endpoints:\n%s", all)
	}
}

// TestOddModels renders models the schema would reject or that are merely
// sparse; none may panic, whatever the outcome.
func TestOddModels(t *testing.T) {
	svc := func(mod func(s *model.Service)) *model.Mesh {
		s := &model.Service{Name: "a", Namespace: "default", ServiceAccount: "a", Proxy: model.ProxySidecar,
			Ports:     []model.Port{{Name: "http", Number: 80, Protocol: model.ProtocolHTTP}},
			Versions:  map[string]*model.Version{"v1": {Name: "v1"}},
			DependsOn: []string{"*"}}
		mod(s)
		return &model.Mesh{Services: map[string]*model.Service{"a": s, "b": {Name: "b", Namespace: "default", Proxy: model.ProxyProxyless,
			Ports: []model.Port{{Name: "grpc", Number: 90, Protocol: model.ProtocolGRPC}}, Versions: map[string]*model.Version{"v1": {Name: "v1"}}, DependsOn: []string{"*"}}}}
	}
	tests := map[string]*model.Mesh{
		"empty":       {},
		"no ports":    svc(func(s *model.Service) { s.Ports = nil }),
		"no versions": svc(func(s *model.Service) { s.Versions = nil }),
		"empty route": svc(func(s *model.Service) { s.Routes = []model.Route{{}} }),
		"unknown source": svc(func(s *model.Service) {
			s.Authorization = &model.Authorization{Allow: []model.AuthzRule{{From: []model.Source{{Service: "zz"}, {}}}}}
		}),
		"mirror nowhere": svc(func(s *model.Service) {
			s.Routes = []model.Route{{To: []model.Destination{{Weight: 100}}, Mirror: &model.Mirror{Service: "zz"}}}
		}),
		"bad tracing": {Mesh: model.MeshConfig{Tracing: &model.Tracing{Provider: "x", Endpoint: "nope"}},
			Services: svc(func(*model.Service) {}).Services},
		"bad gateway": {Gateways: map[string]*model.Gateway{"g": {Name: "g", Kind: "sideways"}, "i": {Name: "i", Kind: model.GatewayIngress,
			Listeners: []model.GatewayListener{{Port: 9, Protocol: model.ProtocolTCP}}}}},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := Render(Input{Mesh: m})
			if err != nil {
				if _, ok := err.(model.Diagnostics); !ok {
					t.Fatalf("error is %T: %v", err, err)
				}
				t.Logf("diagnostics:\n%v", err)
				return
			}
			t.Logf("classes: %v", b.Classes())
		})
	}
}
