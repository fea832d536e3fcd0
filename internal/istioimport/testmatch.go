package istioimport

import (
	"regexp"
	"slices"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// These predicates decide whether a generated request takes the route it
// was generated for and passes the destination's authorization. They
// follow what render emits (Envoy route matching, RBAC), so that a test
// the importer believes in is one the traffic evaluator can pass.

// routeMatches follows Envoy's route matching as render emits it: path
// exact, prefix or full regex; every header; the method as :method.
func routeMatches(r model.Route, req request) bool {
	for _, m := range matchesOf(r) {
		if matchOne(m, req) {
			return true
		}
	}
	return false
}

func matchOne(m model.Match, req request) bool {
	if m.Path != nil && !strMatch(*m.Path, req.path, true) {
		return false
	}
	if m.Method != "" && m.Method != req.method {
		return false
	}
	for k, sm := range m.Headers {
		v, ok := req.headers[k]
		if !ok || !strMatch(sm, v, true) {
			return false
		}
	}
	return true
}

func strMatch(s model.StringMatch, v string, present bool) bool {
	switch {
	case s.Present:
		return present
	case s.Regex != "":
		re, err := regexp.Compile(`^(?:` + s.Regex + `)$`)
		return err == nil && re.MatchString(v)
	case s.Prefix != "":
		return strings.HasPrefix(v, s.Prefix)
	}
	return v == s.Exact
}

// allows follows gitmesh's authorization (render/rbac.go): a matching
// deny rule rejects; with allow rules, one must match.
func allows(s *model.Service, cl caller, req request) bool {
	a := s.Authorization
	if a == nil {
		return true
	}
	for _, r := range a.Deny {
		if ruleMatches(s, r, cl, req) {
			return false
		}
	}
	if len(a.Allow) == 0 {
		return true
	}
	for _, r := range a.Allow {
		if ruleMatches(s, r, cl, req) {
			return true
		}
	}
	return false
}

func ruleMatches(s *model.Service, r model.AuthzRule, cl caller, req request) bool {
	if len(r.From) > 0 && !fromMatches(r.From, cl) {
		return false
	}
	if len(r.Methods) > 0 && !slices.Contains(r.Methods, req.method) {
		return false
	}
	if len(r.Paths) > 0 {
		ok := false
		for _, p := range r.Paths {
			ok = ok || pathMatches(p, req.path)
		}
		if !ok {
			return false
		}
	}
	if len(r.Ports) > 0 {
		ok := false
		for _, p := range r.Ports {
			sp := s.Port(req.port)
			ok = ok || p == req.port || sp != nil && p == sp.TargetPort
		}
		if !ok {
			return false
		}
	}
	return true
}

func fromMatches(from []model.Source, cl caller) bool {
	if len(from) == 0 {
		return true
	}
	for _, src := range from {
		switch {
		case src.Service != "" && src.Service == cl.service:
			return true
		case src.Namespace != "" && src.Namespace == cl.namespace:
			return true
		case src.Principal != "" && strings.TrimPrefix(src.Principal, "spiffe://") == cl.principal:
			return true
		}
	}
	return false
}

// pathMatches reads Istio's path syntax as render/rbac.go does.
func pathMatches(p, path string) bool {
	switch {
	case p == "*":
		return true
	case len(p) > 1 && strings.HasSuffix(p, "*"):
		return strings.HasPrefix(path, strings.TrimSuffix(p, "*"))
	case len(p) > 1 && strings.HasPrefix(p, "*"):
		return strings.HasSuffix(path, strings.TrimPrefix(p, "*"))
	}
	return p == path
}
