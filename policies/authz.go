package policies

import (
	"fmt"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkAuthz checks authorization rules against the mesh: sources must name
// services and namespaces that exist (GM0402), ports must be the service's
// (GM0404), a service without a proxy cannot enforce rules (GM0405), and
// every declared caller must get through (GM0403). A declared caller is a
// service naming the target in dependsOn (not "*") or a gateway routing to
// it; if the rules reject it, its requests will fail with 403 once deployed.
func checkAuthz(c *checker) {
	callers := c.declaredCallers()
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil || s.Authorization == nil {
			continue
		}
		ap := model.Path("services", name, "authorization")
		if s.Proxy == model.ProxyNone {
			c.report(CodeAuthzUnenforced, ap, "service %q has no proxy, so nothing enforces its authorization", name)
		}
		c.checkRules(name, s, ap+".allow", s.Authorization.Allow)
		c.checkRules(name, s, ap+".deny", s.Authorization.Deny)
		for _, cl := range callers[name] {
			c.checkCaller(s, ap, cl)
		}
	}
}

// checkRules resolves the sources and ports of one rule list.
func (c *checker) checkRules(name string, s *model.Service, path string, rules []model.AuthzRule) {
	for i, r := range rules {
		rp := model.Index(path, i)
		for k, src := range r.From {
			sp := model.Index(rp+".from", k)
			switch {
			case src.Service != "" && c.service(src.Service) == nil:
				hint := ""
				if c.gateway(src.Service) != nil {
					hint = " (gateways are matched by namespace or principal)"
				}
				c.report(CodeUnknownSource, sp+".service", "unknown service %q%s", src.Service, hint)
			case src.Namespace != "" && !c.ix.namespaces[src.Namespace]:
				c.report(CodeUnknownSource, sp+".namespace", "unknown namespace %q: no service or gateway runs in it", src.Namespace)
			}
		}
		for k, p := range r.Ports {
			if !serviceListensOn(s, p) {
				c.report(CodeAuthzPort, model.Index(rp+".ports", k), "port %d is not a port of service %q", p, name)
			}
		}
	}
}

// serviceListensOn accepts a service port or a workload target port: rules
// are enforced at the workload, where Istio users write target ports.
func serviceListensOn(s *model.Service, port int) bool {
	for _, p := range s.Ports {
		if p.Number == port || p.TargetPort == port {
			return true
		}
	}
	return false
}

// caller is a workload that declares it calls a service.
type caller struct {
	kind      string // "service" or "gateway"
	name      string
	namespace string
	account   string
	// identity is false for proxy "none" services: they present no
	// certificate, so only rules without sources can match them.
	identity bool
	// target is the service called, for messages.
	target string
}

func (cl caller) String() string { return fmt.Sprintf("%s %q", cl.kind, cl.name) }

// how says where the call is declared; built only when a finding needs it.
func (cl caller) how() string {
	if cl.kind == "gateway" {
		return fmt.Sprintf("which routes to %q", cl.target)
	}
	return fmt.Sprintf("which lists %q in dependsOn", cl.target)
}

// declaredCallers maps each service with authorization to its declared
// callers, services in name order first, then gateways in name order.
func (c *checker) declaredCallers() map[string][]caller {
	out := map[string][]caller{}
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil {
			continue
		}
		seen := map[string]bool{}
		for _, d := range s.DependsOn {
			if d == "*" || d == name || seen[d] || c.service(d) == nil || c.service(d).Authorization == nil {
				continue
			}
			seen[d] = true
			out[d] = append(out[d], caller{
				kind: "service", name: name, namespace: s.Namespace, account: s.ServiceAccount,
				identity: s.Proxy != model.ProxyNone, target: d,
			})
		}
	}
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g == nil {
			continue
		}
		seen := map[string]bool{}
		for _, r := range g.Routes {
			for _, d := range r.To {
				if d.Service == "" || d.External != "" || seen[d.Service] || c.service(d.Service) == nil || c.service(d.Service).Authorization == nil {
					continue
				}
				seen[d.Service] = true
				out[d.Service] = append(out[d.Service], caller{
					kind: "gateway", name: name, namespace: g.Namespace, account: g.ServiceAccount,
					identity: true, target: d.Service,
				})
			}
		}
	}
	return out
}

// checkCaller warns when s's authorization rejects a declared caller: a deny
// rule that matches the caller whatever the request, or allow rules none of
// which can match it. Rules limited by method, path or port count as
// allowing (some requests get through), so only certain rejections warn.
func (c *checker) checkCaller(s *model.Service, ap string, cl caller) {
	identity := cl.identity && c.effectiveMTLS(s) != model.MTLSDisable
	for i, r := range s.Authorization.Deny {
		if len(r.Methods) == 0 && len(r.Paths) == 0 && len(r.Ports) == 0 && c.fromMatches(r.From, cl, identity) {
			c.report(CodeCallerDenied, model.Index(ap+".deny", i), "deny rule rejects %s, %s", cl, cl.how())
			return
		}
	}
	if len(s.Authorization.Allow) == 0 {
		return
	}
	for _, r := range s.Authorization.Allow {
		if c.fromMatches(r.From, cl, identity) {
			return
		}
	}
	c.report(CodeCallerDenied, ap+".allow", "no allow rule admits %s, %s; its requests will fail with 403", cl, cl.how())
}

// fromMatches reports whether a rule's sources match the caller. No sources
// match everyone; identity-based sources need a caller with an identity.
func (c *checker) fromMatches(from []model.Source, cl caller, identity bool) bool {
	if len(from) == 0 {
		return true
	}
	if !identity {
		return false
	}
	principal := strings.TrimPrefix(c.m.SPIFFEID(cl.namespace, cl.account), "spiffe://")
	for _, src := range from {
		switch {
		case src.Service != "":
			if cl.kind == "service" && src.Service == cl.name {
				return true
			}
		case src.Namespace != "":
			if src.Namespace == cl.namespace {
				return true
			}
		case src.Principal != "":
			if principalMatches(strings.TrimPrefix(src.Principal, "spiffe://"), principal) {
				return true
			}
		}
	}
	return false
}

// principalMatches applies Istio's principal patterns: "*", a "*" prefix
// (suffix match) or a "*" suffix (prefix match), else equality.
func principalMatches(pattern, principal string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(principal, pattern[1:])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(principal, pattern[:len(pattern)-1])
	}
	return pattern == principal
}
