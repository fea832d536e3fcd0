package policies

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitmesh/gitmesh/schema/model"
)

// line formats a finding with everything a test asserts: code, severity,
// position, path and message.
func line(d model.Diagnostic) string {
	return fmt.Sprintf("%s %s %s", d.Code, d.Severity, d.Error())
}

func lines(ds model.Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, line(d))
	}
	return out
}

type checkCase struct {
	name string
	edit func(m *model.Mesh)
	want []string
}

func runCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := bookinfo()
			tc.edit(m)
			got := lines(Check(m))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Check() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBookinfoClean(t *testing.T) {
	m := bookinfo()
	if got := Check(m); len(got) != 0 {
		t.Fatalf("bookinfo: want no findings, got:\n%s", got.Error())
	}
	for _, p := range Packs() {
		m.Mesh.Guardrails = append(m.Mesh.Guardrails, p.Name)
	}
	if got := Check(m); len(got) != 0 {
		t.Fatalf("bookinfo with every guardrail pack: want no findings, got:\n%s", got.Error())
	}
}

func TestCheckEmpty(t *testing.T) {
	if got := Check(nil); got != nil {
		t.Errorf("Check(nil) = %v, want nil", got)
	}
	if got := Check(&model.Mesh{Mesh: model.MeshConfig{AllowEmpty: true}}); len(got) != 0 {
		t.Errorf("Check(empty, allowEmpty) = %v, want none", got)
	}
}

func TestReferences(t *testing.T) {
	runCases(t, []checkCase{
		{"unknown destination service", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].To[1].Service = "ratingz"
			at(m, "services.reviews.routes[1].to[1].service", 30, 14)
		}, []string{
			`GM0101 error services/reviews.cue:30:14: services.reviews.routes[1].to[1].service: unknown service "ratingz"`,
		}},
		{"unknown mirror service", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].Mirror = &model.Mirror{Service: "shadow", Percent: 10}
			at(m, "services.reviews.routes[1].mirror", 33, 5)
		}, []string{
			// No position for mirror.service: Lookup falls back to the mirror.
			`GM0101 error services/reviews.cue:33:5: services.reviews.routes[1].mirror.service: unknown service "shadow"`,
		}},
		{"unknown version", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].To[1].Version = "v9"
			at(m, "services.reviews.routes[1].to[1].version", 31, 20)
		}, []string{
			`GM0102 error services/reviews.cue:31:20: services.reviews.routes[1].to[1].version: unknown version "v9" of service "reviews"`,
		}},
		{"unknown mirror version", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].Mirror = &model.Mirror{Service: "reviews", Version: "v4", Percent: 10}
			at(m, "services.reviews.routes[1].mirror.version", 34, 7)
		}, []string{
			`GM0102 error services/reviews.cue:34:7: services.reviews.routes[1].mirror.version: unknown version "v4" of service "reviews"`,
		}},
		{"version on an external", func(m *model.Mesh) {
			m.Gateways["egress"].Routes[0].To[0].Version = "v1"
		}, []string{
			`GM0102 error gateways/egress.cue:1:1: gateways.egress.routes[0].to[0].version: external service "googleapis" has no versions, got version "v1"`,
		}},
		{"unknown via gateway", func(m *model.Mesh) {
			m.External["googleapis"].Via = "egres"
			at(m, "external.googleapis.via", 6, 7)
			at(m, "gateways.egress.routes[0].to[0].external", 12, 9)
		}, []string{
			`GM0103 error external/googleapis.cue:6:7: external.googleapis.via: unknown gateway "egres"`,
			`GM0206 warning gateways/egress.cue:12:9: gateways.egress.routes[0].to[0].external: external service "googleapis" does not set via "egress", so its traffic never passes this route`,
		}},
		{"via names an ingress gateway", func(m *model.Mesh) {
			m.External["googleapis"].Via = "ingress"
			at(m, "external.googleapis.via", 6, 7)
		}, []string{
			`GM0109 error external/googleapis.cue:6:7: external.googleapis.via: gateway "ingress" is an ingress gateway, via needs an egress gateway`,
			`GM0206 warning gateways/egress.cue:1:1: gateways.egress.routes[0].to[0].external: external service "googleapis" does not set via "egress", so its traffic never passes this route`,
		}},
		{"unknown external destination", func(m *model.Mesh) {
			m.Gateways["egress"].Routes[0].To[0].External = "googleapi"
			at(m, "gateways.egress.routes[0].to[0].external", 12, 9)
		}, []string{
			`GM0104 error gateways/egress.cue:12:9: gateways.egress.routes[0].to[0].external: unknown external service "googleapi"`,
		}},
		{"extension names unknown service and gateway", func(m *model.Mesh) {
			m.Extensions["stats"].Services = []string{"productpage", "review"}
			m.Extensions["stats"].Gateways = []string{"ingres"}
			at(m, "extensions.stats.services[1]", 5, 28)
			at(m, "extensions.stats.gateways[0]", 6, 13)
		}, []string{
			`GM0105 error extensions/stats.cue:5:28: extensions.stats.services[1]: unknown service "review"`,
			`GM0103 error extensions/stats.cue:6:13: extensions.stats.gateways[0]: unknown gateway "ingres"`,
		}},
		{"dependsOn unknown name", func(m *model.Mesh) {
			m.Services["details"].DependsOn = []string{"googleapis", "googleapi"}
			at(m, "services.details.dependsOn[1]", 8, 28)
		}, []string{
			`GM0106 error services/details.cue:8:28: services.details.dependsOn[1]: unknown service or external service "googleapi"`,
		}},
		{"destination names service and external", func(m *model.Mesh) {
			m.Gateways["egress"].Routes[0].To[0].Service = "details"
			at(m, "gateways.egress.routes[0].to[0]", 11, 9)
		}, []string{
			`GM0107 error gateways/egress.cue:11:9: gateways.egress.routes[0].to[0]: destination names both service "details" and external service "googleapis", want one`,
		}},
		{"gateway destination names nothing", func(m *model.Mesh) {
			m.Gateways["ingress"].Routes[0].To[0].Service = ""
			at(m, "gateways.ingress.routes[0].to[0]", 20, 11)
		}, []string{
			`GM0107 error gateways/ingress.cue:20:11: gateways.ingress.routes[0].to[0]: gateway route destination names neither a service nor an external service`,
		}},
		{"route target missing from dependsOn", func(m *model.Mesh) {
			m.Services["productpage"].Routes[0].To[0] = model.Destination{Service: "ratings", Weight: 100}
			at(m, "services.productpage.routes[0].to[0].service", 14, 15)
		}, []string{
			`GM0108 warning services/productpage.cue:14:15: services.productpage.routes[0].to[0].service: service "productpage" routes to "ratings", which is not in its dependsOn`,
		}},
		{"dependsOn star declares every target", func(m *model.Mesh) {
			m.Services["productpage"].DependsOn = []string{"*"}
			m.Services["productpage"].Routes[0].To[0] = model.Destination{Service: "ratings", Weight: 100}
		}, nil},
	})
}

func TestWeights(t *testing.T) {
	runCases(t, []checkCase{
		{"sum below 100", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].To[1].Weight = 0
			at(m, "services.reviews.routes[1].to", 28, 5)
		}, []string{
			`GM0201 error services/reviews.cue:28:5: services.reviews.routes[1].to: weights sum to 90, want 100`,
		}},
		{"all weights zero", func(m *model.Mesh) {
			m.Gateways["ingress"].Routes[1].To[0].Weight = 0
			at(m, "gateways.ingress.routes[1]", 24, 3)
		}, []string{
			`GM0201 error gateways/ingress.cue:24:3: gateways.ingress.routes[1].to: weights sum to 0, want 100`,
		}},
		{"sum above 100", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].To[1].Weight = 20
		}, []string{
			`GM0201 error services/reviews.cue:1:1: services.reviews.routes[1].to: weights sum to 110, want 100`,
		}},
		{"no destinations", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].To = nil
		}, []string{
			`GM0201 error services/reviews.cue:1:1: services.reviews.routes[1].to: route "canary" has no destinations`,
		}},
	})
}

func TestPorts(t *testing.T) {
	runCases(t, []checkCase{
		{"route port missing", func(m *model.Mesh) {
			m.Services["reviews"].Routes[0].Port = 9090
			at(m, "services.reviews.routes[0].port", 12, 11)
		}, []string{
			`GM0202 error services/reviews.cue:12:11: services.reviews.routes[0].port: service "reviews" has no port 9090`,
		}},
		{"route port not http", func(m *model.Mesh) {
			s := m.Services["reviews"]
			s.Ports = append(s.Ports, model.Port{Name: "tcp", Number: 9090, Protocol: model.ProtocolTCP, TargetPort: 9090})
			s.Routes[0].Port = 9090
		}, []string{
			`GM0202 error services/reviews.cue:1:1: services.reviews.routes[0].port: port 9090 is "tcp", routes need an HTTP port (http, http2, grpc)`,
		}},
		{"service without http port", func(m *model.Mesh) {
			m.Services["reviews"].Ports[0].Protocol = model.ProtocolTCP
			at(m, "services.reviews.routes", 10, 2)
		}, []string{
			`GM0202 error services/reviews.cue:10:2: services.reviews.routes: service "reviews" has no HTTP port, so its routes never apply`,
		}},
		{"destination port missing", func(m *model.Mesh) {
			m.Gateways["ingress"].Routes[0].To[0].Port = 9090
			at(m, "gateways.ingress.routes[0].to[0].port", 21, 40)
		}, []string{
			`GM0202 error gateways/ingress.cue:21:40: gateways.ingress.routes[0].to[0].port: service "productpage" has no port 9090`,
		}},
		{"destination port ambiguous", func(m *model.Mesh) {
			s := m.Services["productpage"]
			s.Ports = append(s.Ports, model.Port{Name: "grpc", Number: 9090, Protocol: model.ProtocolGRPC, TargetPort: 9090})
			at(m, "gateways.ingress.routes[1].to[0]", 26, 9)
		}, []string{
			`GM0202 error gateways/ingress.cue:26:9: gateways.ingress.routes[1].to[0]: service "productpage" has no port 80 (the port the request came in on) and several ports, set port`,
		}},
		{"mirror port missing", func(m *model.Mesh) {
			m.Services["productpage"].Routes[0].Mirror = &model.Mirror{Service: "productpage", Port: 8080, Percent: 5}
		}, nil}, // a mirror to the owner on another port is the owner's business: see next case
		{"mirror port missing on other service", func(m *model.Mesh) {
			m.Services["productpage"].Routes[0].Mirror = &model.Mirror{Service: "details", Port: 8080, Percent: 5}
		}, []string{
			`GM0202 error services/productpage.cue:1:1: services.productpage.routes[0].mirror.port: service "details" has no port 8080`,
		}},
		{"gateway route port without listener", func(m *model.Mesh) {
			m.Gateways["ingress"].Routes[0].Port = 8080
		}, []string{
			`GM0202 error gateways/ingress.cue:1:1: gateways.ingress.routes[0].port: gateway "ingress" has no listener on port 8080`,
		}},
		{"gateway route on passthrough listener", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			g.Listeners[1].TLS.Mode = model.TLSPassthrough
			g.Routes[0].Port = 443
		}, []string{
			// A route with a PASSTHROUGH listener's port is a stream route
			// (streams.go): HTTP-only fields are the error now.
			"GM0209 error gateways/ingress.cue:1:1: gateways.ingress.routes[0].match: route on PASSTHROUGH listener port 443 forwards bytes, so match (HTTP only) cannot apply; keep hosts and to, or terminate TLS",
			"GM0209 error gateways/ingress.cue:1:1: gateways.ingress.routes[0].timeout: route on PASSTHROUGH listener port 443 forwards bytes, so timeout (HTTP only) cannot apply; keep hosts and to, or terminate TLS",
		}},
	})
}

func TestShadowing(t *testing.T) {
	runCases(t, []checkCase{
		{"catch-all before header rule", func(m *model.Mesh) {
			r := m.Services["reviews"].Routes
			r[0], r[1] = r[1], r[0]
			at(m, "services.reviews.routes[1].match", 20, 5)
		}, []string{
			`GM0203 warning services/reviews.cue:20:5: services.reviews.routes[1].match: route "jason" is unreachable: earlier route "canary" matches every request`,
		}},
		{"duplicate match", func(m *model.Mesh) {
			s := m.Services["reviews"]
			dup := s.Routes[0]
			dup.Name = "jason-again"
			s.Routes = []model.Route{s.Routes[0], dup, s.Routes[1]}
		}, []string{
			`GM0203 warning services/reviews.cue:1:1: services.reviews.routes[1].match: route "jason-again" is unreachable: earlier route "jason" matches every request it would match`,
		}},
		{"longer prefix after shorter", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			css := g.Routes[0]
			css.Name = "css"
			css.Match = []model.Match{{Path: &model.StringMatch{Prefix: "/static/css"}, Method: "GET"}}
			g.Routes = []model.Route{g.Routes[0], css, g.Routes[1]}
		}, []string{
			`GM0203 warning gateways/ingress.cue:1:1: gateways.ingress.routes[1].match: route "css" is unreachable: earlier route "static" matches every request it would match`,
		}},
		{"shorter prefix after longer is fine", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			css := g.Routes[0]
			css.Name = "css"
			css.Match = []model.Match{{Path: &model.StringMatch{Prefix: "/static/css"}}}
			g.Routes = []model.Route{css, g.Routes[0], g.Routes[1]}
		}, nil},
		{"catch-all on another port does not shadow", func(m *model.Mesh) {
			s := m.Services["reviews"]
			s.Ports = append(s.Ports, model.Port{Name: "http-admin", Number: 9081, Protocol: model.ProtocolHTTP, TargetPort: 9081})
			admin := s.Routes[1]
			admin.Name, admin.Port = "admin", 9081
			s.Routes = []model.Route{admin, s.Routes[0], s.Routes[1]}
		}, nil},
		{"any of several matches keeps a route alive", func(m *model.Mesh) {
			s := m.Services["reviews"]
			s.Routes[0].Match = append(s.Routes[0].Match, model.Match{Method: "POST"})
			dup := s.Routes[0]
			dup.Name = "posts"
			dup.Match = []model.Match{{Method: "POST"}, {Method: "PUT"}}
			s.Routes = []model.Route{s.Routes[0], dup, s.Routes[1]}
		}, nil},
	})
}

func TestRetries(t *testing.T) {
	runCases(t, []checkCase{
		{"per-try timeout as long as the route", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].Timeout = 2 * model.Second
			at(m, "services.reviews.routes[1].retries.perTryTimeout", 33, 20)
		}, []string{
			`GM0204 warning services/reviews.cue:33:20: services.reviews.routes[1].retries.perTryTimeout: perTryTimeout "2s" is not shorter than the route timeout "2s", so no retry can happen`,
		}},
	})
}
