package policies

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

func TestEndpointPortOverrides(t *testing.T) {
	runCases(t, []checkCase{
		{"version endpoint names an unknown port", func(m *model.Mesh) {
			m.Services["reviews"].Versions["v2"].Endpoints[0].Ports = map[string]int{"grpc": 7070, "http": 9080}
			at(m, `services.reviews.versions.v2.endpoints[0].ports.grpc`, 12, 40)
		}, []string{
			`GM0110 error services/reviews.cue:12:40: services.reviews.versions.v2.endpoints[0].ports.grpc: endpoint "10.0.0.2" overrides port "grpc", which service "reviews" does not have (ports: "http")`,
		}},
		{"sidecar endpoint listens off the target port", func(m *model.Mesh) {
			m.Services["reviews"].Versions["v2"].Endpoints[0].Ports = map[string]int{"http": 9081}
			at(m, `services.reviews.versions.v2.endpoints[0].ports.http`, 12, 40)
		}, []string{
			`GM0308 warning services/reviews.cue:12:40: services.reviews.versions.v2.endpoints[0].ports.http: endpoint "10.0.0.2" listens on 9081, not on port "http"'s target port 9080: the sidecar's inbound capture matches 9080, so connections to 9081 pass through with only the port-independent authorization (set targetPort instead; overrides suit workloads reached without capture)`,
		}},
		{"quoted port name falls back to the endpoint", func(m *model.Mesh) {
			m.Services["reviews"].Versions["v2"].Endpoints[0].Ports = map[string]int{"9080": 9081}
			at(m, `services.reviews.versions.v2.endpoints[0]`, 12, 20)
		}, []string{
			`GM0110 error services/reviews.cue:12:20: services.reviews.versions.v2.endpoints[0].ports."9080": endpoint "10.0.0.2" overrides port "9080", which service "reviews" does not have (ports: "http")`,
		}},
		{"external endpoint", func(m *model.Mesh) {
			e := m.External["googleapis"]
			e.Resolution = "STATIC"
			e.Endpoints = []model.Endpoint{{Address: "1.2.3.4", Ports: map[string]int{"https": 443}}}
		}, []string{
			`GM0110 error external/googleapis.cue:1:1: external.googleapis.endpoints[0].ports.https: endpoint "1.2.3.4" overrides port "https", which external service "googleapis" does not have (ports: "http")`,
		}},
		{"gateway endpoint: listener and via port names resolve", func(m *model.Mesh) {
			m.Gateways["egress"].Endpoints[0].Ports = map[string]int{"http": 8080, "http-80": 8081, "tls": 8443}
		}, []string{
			`GM0110 error gateways/egress.cue:1:1: gateways.egress.endpoints[0].ports.tls: endpoint "10.0.9.1" overrides port "tls", which gateway "egress" (listener names and the port names of externals via it) does not have (ports: "http", "http-80")`,
		}},
	})
}

// proxylessProductpage makes productpage a proxyless gRPC client of reviews
// and details, so their routes run in grpc-go.
func proxylessProductpage(m *model.Mesh) {
	m.Services["productpage"].Proxy = model.ProxyProxyless
	m.Extensions["stats"].Services = []string{"reviews"}
}

func TestProxylessCapabilities(t *testing.T) {
	runCases(t, []checkCase{
		{"retryOn and perTryTimeout", func(m *model.Mesh) {
			proxylessProductpage(m)
			m.Services["reviews"].Routes[1].Retries.RetryOn = "unavailable,5xx,reset"
			at(m, "services.reviews.routes[1].retries.retryOn", 20, 14)
		}, []string{
			`GM0207 warning services/reviews.cue:1:1: services.reviews.routes[1].retries.perTryTimeout: proxyless gRPC callers ("productpage") ignore perTryTimeout (grpc-go reads no per_try_timeout)`,
			`GM0207 warning services/reviews.cue:20:14: services.reviews.routes[1].retries.retryOn: proxyless gRPC callers ("productpage") ignore retryOn "5xx", "reset" (grpc-go retries only on cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)`,
		}},
		{"method match, headers, mirror, rewrite, weights, external", func(m *model.Mesh) {
			proxylessProductpage(m)
			r := &m.Services["reviews"].Routes[0]
			r.Match[0].Method = "GET"
			r.Headers = &model.Headers{Request: &model.HeaderOps{Remove: []string{"x-debug"}}}
			r.Mirror = &model.Mirror{Version: "v3", Percent: 5}
			r.Rewrite = &model.Rewrite{Prefix: "/v2/"}
			m.Services["reviews"].Routes[1].Retries = nil
			m.Services["reviews"].Versions["v1"].Endpoints[0].Weight = 3
			at(m, "services.reviews.routes[0]", 5, 3)
		}, []string{
			`GM0207 warning services/reviews.cue:1:1: services.reviews.versions.v1.endpoints[0].weight: proxyless gRPC callers ("productpage") ignore endpoint weights (grpc-go's round_robin treats every endpoint alike)`,
			`GM0207 warning services/reviews.cue:5:3: services.reviews.routes[0].headers: proxyless gRPC callers ("productpage") ignore header edits (grpc-go reads no header operations)`,
			`GM0207 warning services/reviews.cue:5:3: services.reviews.routes[0].mirror: proxyless gRPC callers ("productpage") ignore mirrors (grpc-go reads no request_mirror_policies)`,
			`GM0207 warning services/reviews.cue:5:3: services.reviews.routes[0].rewrite: proxyless gRPC callers ("productpage") ignore rewrites (grpc-go reads no prefix or authority rewrite)`,
			`GM0207 warning services/reviews.cue:5:3: services.reviews.routes[0].match[0].method: proxyless gRPC callers ("productpage") never match on method (grpc-go does not expose :method to route matching), so this match never applies for them`,
		}},
		{"route to an external service", func(m *model.Mesh) {
			proxylessProductpage(m)
			m.Services["reviews"].Routes[1].Retries = nil
			m.Services["details"].Routes = []model.Route{{Name: "out", To: []model.Destination{{External: "googleapis", Weight: 100}}, Timeout: model.Second}}
		}, []string{
			`GM0208 error services/details.cue:1:1: services.details.routes[0].to[0].external: proxyless gRPC callers ("productpage") cannot route to external service "googleapis" (proxyless clients get mesh clusters only)`,
		}},
		{"sidecar callers only: nothing", func(m *model.Mesh) {
			m.Services["reviews"].Routes[0].Match[0].Method = "GET"
		}, nil},
		{"extension on a proxyless service", func(m *model.Mesh) {
			proxylessProductpage(m)
			m.Extensions["stats"].Services = []string{"productpage", "reviews"}
			m.Services["reviews"].Routes[1].Retries = nil
		}, []string{
			`GM0207 warning extensions/stats.cue:1:1: extensions.stats.services[0]: service "productpage" is proxyless gRPC, which runs no Wasm filters, so extension "stats" does not apply to it`,
		}},
	})
}

func TestUnsupported(t *testing.T) {
	runCases(t, []checkCase{
		{"oci wasm", func(m *model.Mesh) {
			m.Extensions["stats"].Wasm.URL = "oci://ghcr.io/acme/stats:1"
			at(m, "extensions.stats.wasm.url", 3, 9)
		}, []string{
			`GM0208 error extensions/stats.cue:3:9: extensions.stats.wasm.url: wasm url "oci://ghcr.io/acme/stats:1": only http:// and https:// urls (with sha256) are supported; Envoy cannot pull oci:// images`,
		}},
		{"tracing provider", func(m *model.Mesh) {
			m.Mesh.Tracing = &model.Tracing{Provider: "jaeger", Endpoint: "j:9411"}
		}, []string{
			`GM0208 error mesh.cue:1:1: mesh.tracing.provider: unknown tracing provider "jaeger" (want "zipkin" or "opentelemetry")`,
		}},
	})
}

func TestMisplacedFields(t *testing.T) {
	runCases(t, []checkCase{
		{"service route hosts", func(m *model.Mesh) {
			m.Services["reviews"].Routes[0].Hosts = []string{"reviews.example.com"}
			at(m, "services.reviews.routes[0].hosts", 6, 10)
		}, []string{
			`GM0211 error services/reviews.cue:6:10: services.reviews.routes[0].hosts: service routes apply to every host of service "reviews", so hosts has no effect; only gateway routes select hosts`,
		}},
		{"proxyless service depends on an external", func(m *model.Mesh) {
			m.Services["details"].Proxy = model.ProxyProxyless
		}, []string{
			`GM0207 warning services/details.cue:1:1: services.details.dependsOn[0]: service "details" is proxyless gRPC, which gets mesh clusters only, so external service "googleapis" is not reachable through xDS`,
		}},
	})
}
