package policies

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// passthrough adds a PASSTHROUGH listener on 8443 for secure.example.com
// and api.example.com to the ingress gateway, routed to productpage.
func passthrough(m *model.Mesh) *model.Gateway {
	g := m.Gateways["ingress"]
	g.Listeners = append(g.Listeners, model.GatewayListener{
		Name: "tls-8443", Port: 8443, Protocol: model.ProtocolTLS,
		Hosts: []string{"secure.example.com", "api.example.com"}, TLS: &model.GatewayTLS{Mode: model.TLSPassthrough},
	})
	g.Routes = append(g.Routes, model.Route{
		Name: "secure", Port: 8443, Hosts: []string{"secure.example.com", "api.example.com"},
		To: []model.Destination{{Service: "productpage", Port: 9080, Weight: 100}},
	})
	return g
}

func TestStreamRoutes(t *testing.T) {
	runCases(t, []checkCase{
		{"routed passthrough listener is clean, with every guardrail", func(m *model.Mesh) {
			passthrough(m)
			for _, p := range Packs() {
				if p.Name != "no-wildcard-ingress-hosts" {
					m.Mesh.Guardrails = append(m.Mesh.Guardrails, p.Name)
				}
			}
		}, nil},
		{"weighted split over versions", func(m *model.Mesh) {
			g := passthrough(m)
			m.Services["productpage"].Versions = versions("v1", "v2")
			g.Routes[2].To = []model.Destination{{Service: "productpage", Version: "v1", Port: 9080, Weight: 80}, {Service: "productpage", Version: "v2", Port: 9080, Weight: 20}}
		}, nil},
		{"host without a route", func(m *model.Mesh) {
			g := passthrough(m)
			g.Routes[2].Hosts = []string{"secure.example.com"}
			at(m, "gateways.ingress.listeners[2].hosts[1]", 9, 40)
		}, []string{
			`GM0210 error gateways/ingress.cue:9:40: gateways.ingress.listeners[2].hosts[1]: no route forwards host "api.example.com" on port 8443: add a route with port 8443 and hosts ["api.example.com"]`,
		}},
		{"listener without any route", func(m *model.Mesh) {
			g := passthrough(m)
			g.Routes = g.Routes[:2]
		}, []string{
			`GM0210 error gateways/ingress.cue:1:1: gateways.ingress.listeners[2].hosts[1]: no route forwards host "api.example.com" on port 8443: add a route with port 8443 and hosts ["api.example.com"]`,
			`GM0210 error gateways/ingress.cue:1:1: gateways.ingress.listeners[2].hosts[0]: no route forwards host "secure.example.com" on port 8443: add a route with port 8443 and hosts ["secure.example.com"]`,
		}},
		{"HTTP-only fields on a stream route", func(m *model.Mesh) {
			g := passthrough(m)
			r := &g.Routes[2]
			r.Match = []model.Match{{Path: &model.StringMatch{Prefix: "/x"}}}
			r.Headers = &model.Headers{Request: &model.HeaderOps{Remove: []string{"a"}}}
			r.Retries = &model.Retries{Attempts: 2}
			at(m, "gateways.ingress.routes[2]", 20, 3)
		}, []string{
			"GM0209 error gateways/ingress.cue:20:3: gateways.ingress.routes[2].headers: route on PASSTHROUGH listener port 8443 forwards bytes, so headers (HTTP only) cannot apply; keep hosts and to, or terminate TLS",
			"GM0209 error gateways/ingress.cue:20:3: gateways.ingress.routes[2].match: route on PASSTHROUGH listener port 8443 forwards bytes, so match (HTTP only) cannot apply; keep hosts and to, or terminate TLS",
			"GM0209 error gateways/ingress.cue:20:3: gateways.ingress.routes[2].retries: route on PASSTHROUGH listener port 8443 forwards bytes, so retries (HTTP only) cannot apply; keep hosts and to, or terminate TLS",
		}},
		{"stream route host the listener does not list", func(m *model.Mesh) {
			g := passthrough(m)
			g.Routes[2].Hosts = []string{"secure.example.com", "api.example.com", "*.example.com"}
		}, []string{
			`GM0205 error gateways/ingress.cue:1:1: gateways.ingress.routes[2].hosts[2]: host "*.example.com" is not a host of a PASSTHROUGH or tls listener of gateway "ingress" on port 8443 (stream routes name listener hosts exactly)`,
		}},
		{"second catch-all stream route is shadowed", func(m *model.Mesh) {
			g := passthrough(m)
			g.Routes[2].Hosts = nil
			g.Routes = append(g.Routes, model.Route{Name: "late", Port: 8443, To: []model.Destination{{Service: "productpage", Port: 9080, Weight: 100}}})
		}, []string{
			`GM0203 warning gateways/ingress.cue:1:1: gateways.ingress.routes[3]: route "late" is unreachable: earlier route "secure" matches every request`,
		}},
		{"tcp listener: one route, no hosts", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			g.Listeners = append(g.Listeners, model.GatewayListener{Name: "tcp-3306", Port: 3306, Protocol: model.ProtocolTCP, Hosts: []string{"db.example.com"}})
			g.Routes = append(g.Routes, model.Route{Name: "db", Port: 3306, Hosts: []string{"db.example.com"}, Timeout: model.Second,
				To: []model.Destination{{Service: "productpage", Port: 9080, Weight: 100}}})
		}, []string{
			"GM0209 error gateways/ingress.cue:1:1: gateways.ingress.routes[2].hosts: route on tcp listener port 3306 cannot select hosts (plain TCP has no SNI), remove hosts",
			"GM0209 error gateways/ingress.cue:1:1: gateways.ingress.routes[2].timeout: route on tcp listener port 3306 forwards bytes, so timeout (HTTP only) cannot apply; keep hosts and to, or terminate TLS",
			`GM0209 error gateways/ingress.cue:1:1: gateways.ingress.listeners[2].hosts: tcp listener on port 3306 cannot tell hosts apart (plain TCP has no SNI), want hosts ["*"]`,
		}},
		{"tcp-only gateway: route without port", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			g.Listeners = []model.GatewayListener{{Name: "tcp-3306", Port: 3306, Protocol: model.ProtocolTCP}}
			g.Routes = []model.Route{
				{Name: "db", Port: 3306, To: []model.Destination{{Service: "productpage", Port: 9080, Weight: 100}}},
				{Name: "stray", To: []model.Destination{{Service: "productpage", Port: 9080, Weight: 100}}},
			}
		}, []string{
			`GM0202 error gateways/ingress.cue:1:1: gateways.ingress.routes[1]: gateway "ingress" has no HTTP listener, so a route without port never applies (set port to route a PASSTHROUGH or tcp listener)`,
		}},
		{"two SNI listeners on one port with the default name", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			g.Listeners = append(g.Listeners, model.GatewayListener{Name: "https-443", Port: 443, Protocol: model.ProtocolHTTPS,
				Hosts: []string{"admin.example.com"}, TLS: &model.GatewayTLS{Mode: model.TLSSimple, CredentialName: "admin"}})
		}, []string{
			`GM0303 error gateways/ingress.cue:1:1: gateways.ingress.listeners[2].name: listener name "https-443" is also used by listeners[1]; listeners sharing a port need a name each`,
		}},
	})
}
