package policies

import (
	"sort"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Pack is a built-in guardrail pack: an opinionated rule set a mesh enables
// by name in mesh.guardrails. Packs turn organisation policy ("everything
// mTLS", "no unbounded retries") into errors on pull requests.
type Pack struct {
	// Name is what mesh.guardrails lists.
	Name string `json:"name"`
	// Code is the finding code the pack reports.
	Code string `json:"code"`
	// Description says in one line what the pack enforces.
	Description string `json:"description"`

	run func(*checker)
}

// packs is the registry in code order; an explicit list rather than init()
// registration, so what exists is visible in one place.
var packs = []Pack{
	{"require-strict-mtls", CodeStrictMTLS, "every service's effective mTLS mode is STRICT and it runs a proxy to enforce it", packStrictMTLS},
	{"require-timeouts", CodeTimeouts, "every HTTP route sets a timeout", packTimeouts},
	{"require-retries-budget", CodeRetriesBudget, "every retry policy sets perTryTimeout and at most 5 attempts", packRetriesBudget},
	{"no-wildcard-ingress-hosts", CodeWildcardIngress, `no ingress listener serves "*" or a "*." wildcard host`, packNoWildcardIngress},
	{"egress-through-gateway", CodeEgressGateway, "every external service leaves through an egress gateway (via) and outboundTrafficPolicy is not ALLOW_ANY", packEgressThroughGateway},
	{"require-authorization", CodeAuthzRequired, "every service has authorization with at least one allow rule", packRequireAuthz},
}

// maxRetryAttempts bounds retries under require-retries-budget: beyond 5
// attempts a retry storm multiplies load on a failing service more than it
// helps requests through.
const maxRetryAttempts = 5

// Packs lists the built-in guardrail packs with a one-line description each
// (for `gitmesh validate --list-guardrails` and docs).
func Packs() []Pack {
	out := make([]Pack, len(packs))
	for i, p := range packs {
		p.run = nil
		out[i] = p
	}
	return out
}

// checkPacks runs the packs the mesh enables, each once, and reports names
// that are not packs (GM1000) so a typo does not silently disable a policy.
func checkPacks(c *checker) {
	byName := make(map[string]Pack, len(packs))
	names := make([]string, 0, len(packs))
	for _, p := range packs {
		byName[p.Name] = p
		names = append(names, p.Name)
	}
	sort.Strings(names)
	enabled := map[string]bool{}
	for i, g := range c.m.Mesh.Guardrails {
		if _, ok := byName[g]; !ok {
			c.report(CodeUnknownGuardrail, model.Index(model.Path("mesh", "guardrails"), i),
				"unknown guardrail pack %q (known: %s)", g, strings.Join(names, ", "))
			continue
		}
		enabled[g] = true
	}
	for _, p := range packs {
		if enabled[p.Name] {
			p.run(c)
		}
	}
}

func packStrictMTLS(c *checker) {
	inheriting := 0
	for _, name := range c.ix.services {
		s := c.service(name)
		switch {
		case s == nil:
		case s.Proxy == model.ProxyNone:
			c.report(CodeStrictMTLS, model.Path("services", name, "proxy"),
				"service %q has no proxy, so it cannot enforce mtls %q", name, model.MTLSStrict)
		case s.MTLS == "":
			if c.effectiveMTLS(s) != model.MTLSStrict {
				inheriting++
			}
		case s.MTLS != model.MTLSStrict:
			c.report(CodeStrictMTLS, model.Path("services", name, "mtls"), "mtls is %q, want %q", s.MTLS, model.MTLSStrict)
		}
	}
	if inheriting > 0 {
		c.report(CodeStrictMTLS, model.Path("mesh", "mtls"), "mesh mtls is %q, want %q (inherited by %d services)",
			c.effectiveMTLS(&model.Service{}), model.MTLSStrict, inheriting)
	}
}

func packTimeouts(c *checker) {
	for _, rs := range c.routeSets() {
		for i, r := range rs.routes {
			if rs.gateway != nil && rs.isStream(i) {
				continue // a stream route forwards bytes: no request to time out
			}
			if r.Timeout <= 0 {
				c.report(CodeTimeouts, rs.routePath(i)+".timeout", "route %q sets no timeout", routeName(r, i))
			}
		}
	}
}

func packRetriesBudget(c *checker) {
	for _, rs := range c.routeSets() {
		for i, r := range rs.routes {
			if r.Retries == nil || r.Retries.Attempts == 0 {
				continue
			}
			rp := rs.routePath(i) + ".retries"
			if r.Retries.PerTryTimeout <= 0 {
				c.report(CodeRetriesBudget, rp+".perTryTimeout", "retries set no perTryTimeout")
			}
			if r.Retries.Attempts > maxRetryAttempts {
				c.report(CodeRetriesBudget, rp+".attempts", "retries attempts is %d, want at most %d",
					r.Retries.Attempts, maxRetryAttempts)
			}
		}
	}
}

func packNoWildcardIngress(c *checker) {
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g == nil || g.Kind != model.GatewayIngress {
			continue
		}
		for i, l := range g.Listeners {
			for k, h := range l.Hosts {
				if h == "*" || strings.HasPrefix(h, "*.") {
					c.report(CodeWildcardIngress,
						model.Index(model.Index(model.Path("gateways", name, "listeners"), i)+".hosts", k),
						"wildcard host %q on an ingress listener, want explicit hosts", h)
				}
			}
		}
	}
}

func packEgressThroughGateway(c *checker) {
	if c.m.Mesh.OutboundTrafficPolicy == "ALLOW_ANY" {
		c.report(CodeEgressGateway, model.Path("mesh", "outboundTrafficPolicy"),
			"outboundTrafficPolicy is %q, want %q", "ALLOW_ANY", "REGISTRY_ONLY")
	}
	for _, name := range c.ix.externals {
		if e := c.external(name); e != nil && e.Via == "" {
			c.report(CodeEgressGateway, model.Path("external", name, "via"),
				"external service %q sets no via, so its traffic leaves the mesh directly", name)
		}
	}
}

func packRequireAuthz(c *checker) {
	for _, name := range c.ix.services {
		s := c.service(name)
		if s != nil && (s.Authorization == nil || len(s.Authorization.Allow) == 0) {
			c.report(CodeAuthzRequired, model.Path("services", name, "authorization"),
				"service %q has no authorization allow rules", name)
		}
	}
}
