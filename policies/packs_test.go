package policies

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

func enable(m *model.Mesh, packs ...string) { m.Mesh.Guardrails = append(m.Mesh.Guardrails, packs...) }

func TestPacks(t *testing.T) {
	runCases(t, []checkCase{
		{"unknown pack", func(m *model.Mesh) {
			enable(m, "require-timeouts", "require-mtls")
			at(m, "mesh.guardrails[1]", 9, 33)
		}, []string{
			`GM1000 error mesh.cue:9:33: mesh.guardrails[1]: unknown guardrail pack "require-mtls" (known: egress-through-gateway, no-wildcard-ingress-hosts, require-authorization, require-retries-budget, require-strict-mtls, require-timeouts)`,
		}},
		{"require-strict-mtls", func(m *model.Mesh) {
			enable(m, "require-strict-mtls")
			m.Mesh.MTLS = model.MTLSPermissive
			m.Services["reviews"].MTLS = model.MTLSStrict
			m.Services["ratings"].MTLS = model.MTLSPermissive
			at(m, "mesh.mtls", 4, 9)
			at(m, "services.ratings.mtls", 3, 9)
		}, []string{
			`GM1001 error mesh.cue:4:9: mesh.mtls: mesh mtls is "PERMISSIVE", want "STRICT" (inherited by 2 services)`,
			`GM1001 error services/ratings.cue:3:9: services.ratings.mtls: mtls is "PERMISSIVE", want "STRICT"`,
		}},
		{"require-strict-mtls without a proxy", func(m *model.Mesh) {
			enable(m, "require-strict-mtls")
			m.Services["ratings"].Proxy = model.ProxyNone
			m.Services["ratings"].Authorization = nil
		}, []string{
			`GM1001 error services/ratings.cue:1:1: services.ratings.proxy: service "ratings" has no proxy, so it cannot enforce mtls "STRICT"`,
		}},
		{"require-timeouts", func(m *model.Mesh) {
			enable(m, "require-timeouts")
			m.Services["reviews"].Routes[0].Timeout = 0
			m.Gateways["ingress"].Routes[1].Timeout = 0
			at(m, "services.reviews.routes[0]", 11, 3)
		}, []string{
			`GM1002 error gateways/ingress.cue:1:1: gateways.ingress.routes[1].timeout: route "productpage" sets no timeout`,
			`GM1002 error services/reviews.cue:11:3: services.reviews.routes[0].timeout: route "jason" sets no timeout`,
		}},
		{"require-retries-budget", func(m *model.Mesh) {
			enable(m, "require-retries-budget")
			m.Services["reviews"].Routes[1].Retries = &model.Retries{Attempts: 10, RetryOn: "5xx"}
			at(m, "services.reviews.routes[1].retries", 32, 5)
		}, []string{
			`GM1003 error services/reviews.cue:32:5: services.reviews.routes[1].retries.attempts: retries attempts is 10, want at most 5`,
			`GM1003 error services/reviews.cue:32:5: services.reviews.routes[1].retries.perTryTimeout: retries set no perTryTimeout`,
		}},
		{"no-wildcard-ingress-hosts", func(m *model.Mesh) {
			enable(m, "no-wildcard-ingress-hosts")
			g := m.Gateways["ingress"]
			g.Listeners[0].Hosts = []string{"*"}
			g.Listeners[1].Hosts = []string{"*.example.com"}
			m.Gateways["egress"].Listeners[0].Hosts = []string{"*"} // egress is not ingress
			at(m, "gateways.ingress.listeners[1].hosts[0]", 9, 14)
		}, []string{
			`GM1004 error gateways/ingress.cue:1:1: gateways.ingress.listeners[0].hosts[0]: wildcard host "*" on an ingress listener, want explicit hosts`,
			`GM1004 error gateways/ingress.cue:9:14: gateways.ingress.listeners[1].hosts[0]: wildcard host "*.example.com" on an ingress listener, want explicit hosts`,
		}},
		{"egress-through-gateway", func(m *model.Mesh) {
			enable(m, "egress-through-gateway")
			m.Mesh.OutboundTrafficPolicy = "ALLOW_ANY"
			m.External["httpbin"] = &model.External{Name: "httpbin", Hosts: []string{"httpbin.org"}, Ports: []model.Port{httpPort(80)}, Resolution: "DNS"}
			m.Services["details"].DependsOn = append(m.Services["details"].DependsOn, "httpbin")
		}, []string{
			`GM1005 error -: external.httpbin.via: external service "httpbin" sets no via, so its traffic leaves the mesh directly`,
			`GM1005 error mesh.cue:1:1: mesh.outboundTrafficPolicy: outboundTrafficPolicy is "ALLOW_ANY", want "REGISTRY_ONLY"`,
		}},
		{"require-authorization", func(m *model.Mesh) {
			enable(m, "require-authorization")
			m.Services["ratings"].Authorization = nil
			m.Services["details"].Authorization = &model.Authorization{Deny: []model.AuthzRule{{Paths: []string{"/admin"}}}}
		}, []string{
			`GM1006 error services/details.cue:1:1: services.details.authorization: service "details" has no authorization allow rules`,
			`GM1006 error services/ratings.cue:1:1: services.ratings.authorization: service "ratings" has no authorization allow rules`,
		}},
		{"pack listed twice runs once", func(m *model.Mesh) {
			enable(m, "require-authorization", "require-authorization")
			m.Services["ratings"].Authorization = nil
		}, []string{
			`GM1006 error services/ratings.cue:1:1: services.ratings.authorization: service "ratings" has no authorization allow rules`,
		}},
	})
}

func TestPacksList(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Packs() {
		if p.Name == "" || p.Description == "" || seen[p.Name] {
			t.Errorf("pack %+v: want a unique name and a description", p)
		}
		seen[p.Name] = true
		if _, ok := LookupCode(p.Code); !ok {
			t.Errorf("pack %q reports %s, which is not in the code table", p.Name, p.Code)
		}
		if p.run != nil {
			t.Errorf("Packs() leaks the run function of %q", p.Name)
		}
	}
}
