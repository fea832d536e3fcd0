package policies

import (
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Test meshes are Go literals shaped like what schema.Load returns, defaults
// filled in (namespace, serviceAccount, route names, targetPort, weights).

func httpPort(n int) model.Port {
	return model.Port{Name: "http", Number: n, Protocol: model.ProtocolHTTP, TargetPort: n}
}

func versions(names ...string) map[string]*model.Version {
	out := map[string]*model.Version{}
	for i, n := range names {
		out[n] = &model.Version{Name: n, Labels: map[string]string{"version": n},
			Endpoints: []model.Endpoint{{Address: "10.0.0." + strconv.Itoa(i+1)}}}
	}
	return out
}

func allowFrom(srcs ...model.Source) *model.Authorization {
	return &model.Authorization{Allow: []model.AuthzRule{{From: srcs}}}
}

// bookinfo is Istio's sample application as a gitmesh mesh: an ingress
// gateway in front of productpage, which calls details and reviews; reviews
// v1/v2/v3 with a header rule and a canary split, calling ratings; details
// calling an external API through the egress gateway; STRICT mTLS and
// authorization on every service. Check must find nothing in it.
func bookinfo() *model.Mesh {
	m := &model.Mesh{
		Mesh: model.MeshConfig{
			Name: "bookinfo", TrustDomain: "cluster.local", ClusterDomain: "cluster.local",
			MTLS: model.MTLSStrict, OutboundTrafficPolicy: "REGISTRY_ONLY",
		},
		Services: map[string]*model.Service{
			"productpage": {
				Name: "productpage", Namespace: "bookinfo", ServiceAccount: "bookinfo-productpage",
				Proxy: model.ProxySidecar, Ports: []model.Port{httpPort(9080)}, Versions: versions("v1"),
				Discovery: "static", DependsOn: []string{"details", "reviews"},
				Routes:        []model.Route{{Name: "default", To: []model.Destination{{Version: "v1", Weight: 100}}, Timeout: 10 * model.Second}},
				Authorization: allowFrom(model.Source{Principal: "cluster.local/ns/istio-system/sa/ingress-gateway"}),
			},
			"details": {
				Name: "details", Namespace: "bookinfo", ServiceAccount: "bookinfo-details",
				Proxy: model.ProxySidecar, Ports: []model.Port{httpPort(9080)}, Versions: versions("v1"),
				Discovery: "static", DependsOn: []string{"googleapis"},
				Authorization: &model.Authorization{Allow: []model.AuthzRule{{
					From: []model.Source{{Service: "productpage"}}, Methods: []string{"GET"},
				}}},
			},
			"reviews": {
				Name: "reviews", Namespace: "bookinfo", ServiceAccount: "bookinfo-reviews",
				Proxy: model.ProxySidecar, Ports: []model.Port{httpPort(9080)}, Versions: versions("v1", "v2", "v3"),
				Discovery: "static", DependsOn: []string{"ratings"},
				Routes: []model.Route{
					{
						Name:    "jason",
						Match:   []model.Match{{Headers: map[string]model.StringMatch{"end-user": {Exact: "jason"}}}},
						To:      []model.Destination{{Version: "v2", Weight: 100}},
						Timeout: 5 * model.Second,
					},
					{
						Name:    "canary",
						To:      []model.Destination{{Version: "v1", Weight: 90}, {Version: "v3", Weight: 10}},
						Timeout: 5 * model.Second,
						Retries: &model.Retries{Attempts: 3, PerTryTimeout: 2 * model.Second, RetryOn: "5xx,reset"},
					},
				},
				Authorization: allowFrom(model.Source{Service: "productpage"}),
			},
			"ratings": {
				Name: "ratings", Namespace: "bookinfo", ServiceAccount: "bookinfo-ratings",
				Proxy: model.ProxySidecar, Ports: []model.Port{httpPort(9080)}, Versions: versions("v1"),
				Discovery: "static", DependsOn: []string{},
				Authorization: &model.Authorization{
					Allow: []model.AuthzRule{{From: []model.Source{{Namespace: "bookinfo"}}, Ports: []int{9080}}},
					Deny:  []model.AuthzRule{{Paths: []string{"/admin*"}}},
				},
			},
		},
		Gateways: map[string]*model.Gateway{
			"ingress": {
				Name: "ingress", Kind: model.GatewayIngress, Namespace: "istio-system", ServiceAccount: "ingress-gateway",
				Listeners: []model.GatewayListener{
					{Name: "http-80", Port: 80, Protocol: model.ProtocolHTTP, Hosts: []string{"bookinfo.example.com"}},
					{Name: "https-443", Port: 443, Protocol: model.ProtocolHTTPS, Hosts: []string{"bookinfo.example.com"},
						TLS: &model.GatewayTLS{Mode: model.TLSSimple, CredentialName: "bookinfo-cert", MinVersion: "1.2"}},
				},
				Routes: []model.Route{
					{
						Name: "static", Hosts: []string{"bookinfo.example.com"},
						Match:   []model.Match{{Path: &model.StringMatch{Prefix: "/static/"}}},
						To:      []model.Destination{{Service: "productpage", Port: 9080, Weight: 100}},
						Timeout: 5 * model.Second,
					},
					{
						Name: "productpage", Hosts: []string{"bookinfo.example.com"},
						Match:   []model.Match{{Path: &model.StringMatch{Prefix: "/"}}},
						To:      []model.Destination{{Service: "productpage", Weight: 100}},
						Timeout: 15 * model.Second,
					},
				},
			},
			"egress": {
				Name: "egress", Kind: model.GatewayEgress, Namespace: "istio-system", ServiceAccount: "egress-gateway",
				Listeners: []model.GatewayListener{
					{Name: "http-80", Port: 80, Protocol: model.ProtocolHTTP, Hosts: []string{"www.googleapis.com"}},
				},
				Routes: []model.Route{{
					Name: "googleapis", To: []model.Destination{{External: "googleapis", Port: 80, Weight: 100}},
					Timeout: 10 * model.Second,
				}},
				Endpoints: []model.Endpoint{{Address: "10.0.9.1"}},
			},
		},
		External: map[string]*model.External{
			"googleapis": {
				Name: "googleapis", Hosts: []string{"www.googleapis.com"},
				Ports: []model.Port{httpPort(80)}, Resolution: "DNS", Via: "egress",
				TLS: &model.ExternalTLS{SNI: "www.googleapis.com"},
			},
		},
		Extensions: map[string]*model.Extension{
			"stats": {
				Name: "stats", Wasm: model.Wasm{URL: "https://registry.example.com/stats-1.wasm", SHA256: strings.Repeat("ab", 32)},
				Phase: model.PhaseStats, Services: []string{"productpage", "reviews"}, Gateways: []string{"ingress"},
			},
		},
	}
	m.Sources = model.NewSources()
	// Every object is known from the first line of its file, so a finding
	// about a path the test did not position falls back there.
	m.Sources.Set("mesh", model.Pos{File: "mesh.cue", Line: 1, Col: 1})
	for name := range m.Services {
		m.Sources.Set(model.Path("services", name), model.Pos{File: "services/" + name + ".cue", Line: 1, Col: 1})
	}
	for name := range m.Gateways {
		m.Sources.Set(model.Path("gateways", name), model.Pos{File: "gateways/" + name + ".cue", Line: 1, Col: 1})
	}
	for name := range m.External {
		m.Sources.Set(model.Path("external", name), model.Pos{File: "external/" + name + ".cue", Line: 1, Col: 1})
	}
	for name := range m.Extensions {
		m.Sources.Set(model.Path("extensions", name), model.Pos{File: "extensions/" + name + ".cue", Line: 1, Col: 1})
	}
	return m
}

// at records a position for path in the file its first two elements name.
func at(m *model.Mesh, path string, line, col int) {
	file := "mesh.cue"
	if parts := strings.SplitN(path, ".", 3); len(parts) >= 2 && parts[0] != "mesh" {
		file = parts[0] + "/" + strings.SplitN(parts[1], "[", 2)[0] + ".cue"
	}
	m.Sources.Set(path, model.Pos{File: file, Line: line, Col: col})
}
