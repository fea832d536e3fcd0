package render

import (
	"strings"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Authorization as Envoy RBAC, with Istio's AuthorizationPolicy meaning:
// deny rules are checked first; then, if the service has allow rules, a
// request must match one. Callers are identified by the URI SAN of their
// mesh certificate (their SPIFFE id), so source rules only match over mTLS.
//
// RBAC is rendered per inbound port, which lets a rule's `ports` be applied
// statically: a rule that does not list the port is left out of that port's
// policy (no destination_port permission is needed, and the port the proxy
// sees — the target port — never has to be mapped back).

// rbacRules renders one port's deny and allow rule sets; nil means no filter.
// tcp applies Istio's rule for TCP ports: HTTP-only conditions (methods,
// paths) make an allow rule never match and are dropped from a deny rule, so
// both fail closed.
func (b *builder) rbacRules(s *model.Service, port int, tcp bool) (deny, allow *rbacv3.RBAC) {
	az := s.Authorization
	if az == nil {
		return nil, nil
	}
	base := b.svcPath(s.Name, "authorization")
	if len(az.Deny) > 0 {
		deny = &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: map[string]*rbacv3.Policy{}}
		for i, r := range az.Deny {
			if !appliesToPort(r, port) {
				continue
			}
			stripped := tcp && (len(r.Methods) > 0 || len(r.Paths) > 0)
			if tcp {
				r.Methods, r.Paths = nil, nil
			}
			deny.Policies[rbacPolicyName(false, i)] = b.sharedPolicy(policyKey{s, false, i, stripped}, r, base+".deny")
		}
		if len(deny.Policies) == 0 {
			deny = nil
		}
	}
	if len(az.Allow) > 0 {
		// An allow set with no applicable rule denies everything on this
		// port, as in Istio: the presence of allow rules is the switch.
		allow = &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW, Policies: map[string]*rbacv3.Policy{}}
		for i, r := range az.Allow {
			if !appliesToPort(r, port) || (tcp && (len(r.Methods) > 0 || len(r.Paths) > 0)) {
				continue
			}
			allow.Policies[rbacPolicyName(true, i)] = b.sharedPolicy(policyKey{s, true, i, false}, r, base+".allow")
		}
	}
	return deny, allow
}

// policyKey names one authorization rule as rendered: the service, allow
// or deny, the rule's index, and whether a TCP port's rendering stripped
// its HTTP-only conditions.
type policyKey struct {
	s       *model.Service
	allow   bool
	i       int
	tcpOnly bool
}

// sharedPolicy is rbacPolicy memoised by key: a rule renders the same on
// every port it applies to (and on the passthrough chain), so a service's
// ports and its virtualInbound share one Policy message. A rendering that
// reported a finding is not kept, so the finding is reported wherever it
// was before.
func (b *builder) sharedPolicy(k policyKey, r model.AuthzRule, list string) *rbacv3.Policy {
	if pol, ok := b.policies[k]; ok {
		return pol
	}
	n := len(b.diags)
	pol := b.rbacPolicy(r, model.Index(list, k.i))
	if len(b.diags) == n {
		b.policies[k] = pol
	}
	return pol
}

// httpRBAC wraps rules for the HTTP RBAC filter.
func httpRBAC(r *rbacv3.RBAC) *rbachttpv3.RBAC { return &rbachttpv3.RBAC{Rules: r} }

func appliesToPort(r model.AuthzRule, port int) bool {
	if len(r.Ports) == 0 {
		return true
	}
	for _, p := range r.Ports {
		if p == port {
			return true
		}
	}
	return false
}

// rbacPolicy renders one rule: (any method) AND (any path) for any principal.
func (b *builder) rbacPolicy(r model.AuthzRule, path string) *rbacv3.Policy {
	var and []*rbacv3.Permission
	if len(r.Methods) > 0 {
		var or []*rbacv3.Permission
		for _, m := range r.Methods {
			or = append(or, &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{
				Name:                 ":method",
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(m)},
			}}})
		}
		and = append(and, orPermission(or))
	}
	if len(r.Paths) > 0 && !contains(r.Paths, "*") {
		var or []*rbacv3.Permission
		for _, p := range r.Paths {
			or = append(or, &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
				Rule: &matcherv3.PathMatcher_Path{Path: istioPath(p)},
			}}})
		}
		and = append(and, orPermission(or))
	}
	perm := &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}}
	switch len(and) {
	case 1:
		perm = and[0]
	case 2:
		perm = &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: and}}}
	}
	pol := &rbacv3.Policy{Permissions: []*rbacv3.Permission{perm}}
	if len(r.From) == 0 {
		pol.Principals = []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}}
		return pol
	}
	var ids []*rbacv3.Principal
	for j, src := range r.From {
		m := b.sourceMatcher(src, model.Index(path+".from", j))
		if m == nil {
			continue
		}
		ids = append(ids, &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{
			Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m},
		}})
	}
	switch len(ids) {
	case 0:
		// Every source failed to resolve (already reported): match nobody.
		pol.Principals = []*rbacv3.Principal{{Identifier: &rbacv3.Principal_NotId{
			NotId: &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}},
		}}}
	case 1:
		pol.Principals = ids
	default:
		pol.Principals = []*rbacv3.Principal{{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: ids}}}}
	}
	return pol
}

// sourceMatcher matches the caller's SPIFFE id for one source.
func (b *builder) sourceMatcher(src model.Source, path string) *matcherv3.StringMatcher {
	switch {
	case src.Service != "":
		t := b.m.Services[src.Service]
		if t == nil {
			b.errorf(CodeUnresolved, path+".service", "unknown service %q", src.Service)
			return nil
		}
		return exact(b.ix.spiffe(t))
	case src.Namespace != "":
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{
			Prefix: "spiffe://" + b.m.Mesh.TrustDomain + "/ns/" + src.Namespace + "/",
		}}
	case src.Principal != "":
		return exact("spiffe://" + strings.TrimPrefix(src.Principal, "spiffe://"))
	}
	b.errorf(CodeInvalidValue, path, "source names no service, namespace or principal")
	return nil
}

// istioPath reads Istio's path syntax: "/a*" is a prefix, "*.js" a suffix,
// anything else exact.
func istioPath(p string) *matcherv3.StringMatcher {
	switch {
	case len(p) > 1 && strings.HasSuffix(p, "*"):
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: strings.TrimSuffix(p, "*")}}
	case len(p) > 1 && strings.HasPrefix(p, "*"):
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: strings.TrimPrefix(p, "*")}}
	}
	return exact(p)
}

func orPermission(or []*rbacv3.Permission) *rbacv3.Permission {
	if len(or) == 1 {
		return or[0]
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: or}}}
}

func exact(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
