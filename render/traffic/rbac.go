package traffic

import (
	"fmt"
	"sort"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
)

// rbacCtx is what an RBAC engine sees of a request: the peer's URI SAN
// (the SPIFFE id of a mutual TLS peer, "" without one), the destination
// port, and for HTTP the headers and path.
type rbacCtx struct {
	principal string
	dstPort   int
	headers   map[string]string // nil for a TCP connection
	path      string
}

// rbacDecide follows Envoy's RBAC engine (RoleBasedAccessControlEngineImpl
// in source/extensions/filters/common/rbac/engine_impl.cc; RBAC filter doc,
// configuration/http/http_filters/rbac_filter): a policy matches when any
// of its permissions and any of its principals match; an ALLOW engine
// allows iff some policy matches, a DENY engine denies iff some policy
// matches. Policies are tried in name order (the proto map has none; the
// decision does not depend on it) and the matching one is named. An
// unsupported matcher is an error: guessing would make a test lie.
func rbacDecide(r *rbacv3.RBAC, c rbacCtx) (allowed bool, policy string, err error) {
	names := make([]string, 0, len(r.GetPolicies()))
	for n := range r.GetPolicies() {
		names = append(names, n)
	}
	sort.Strings(names)
	matched := ""
	for _, n := range names {
		p := r.GetPolicies()[n]
		pm, err := anyPermission(p.GetPermissions(), c)
		if err != nil {
			return false, n, err
		}
		if !pm {
			continue
		}
		im, err := anyPrincipal(p.GetPrincipals(), c)
		if err != nil {
			return false, n, err
		}
		if im {
			matched = n
			break
		}
	}
	if r.GetAction() == rbacv3.RBAC_DENY {
		return matched == "", matched, nil
	}
	return matched != "", matched, nil
}

func anyPermission(ps []*rbacv3.Permission, c rbacCtx) (bool, error) {
	for _, p := range ps {
		ok, err := permission(p, c)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// permission follows source/extensions/filters/common/rbac/matchers.cc.
// HTTP-only matchers (header, url_path) do not match a TCP connection.
func permission(p *rbacv3.Permission, c rbacCtx) (bool, error) {
	switch r := p.GetRule().(type) {
	case *rbacv3.Permission_Any:
		return r.Any, nil
	case *rbacv3.Permission_AndRules:
		for _, q := range r.AndRules.GetRules() {
			ok, err := permission(q, c)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case *rbacv3.Permission_OrRules:
		return anyPermission(r.OrRules.GetRules(), c)
	case *rbacv3.Permission_NotRule:
		ok, err := permission(r.NotRule, c)
		return !ok, err
	case *rbacv3.Permission_Header:
		return c.headers != nil && headerMatch(r.Header, c.headers), nil
	case *rbacv3.Permission_UrlPath:
		// url_path compares the path without query (PathMatcher in
		// matchers.cc strips it).
		path, _ := splitPath(c.path)
		return c.headers != nil && stringMatch(r.UrlPath.GetPath(), path), nil
	case *rbacv3.Permission_DestinationPort:
		return int(r.DestinationPort) == c.dstPort, nil
	}
	return false, fmt.Errorf("rbac permission %T is not modelled", p.GetRule())
}

func anyPrincipal(ps []*rbacv3.Principal, c rbacCtx) (bool, error) {
	for _, p := range ps {
		ok, err := principal(p, c)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// principal follows matchers.cc: authenticated.principal_name matches the
// peer certificate's URI SAN; without a peer certificate nothing
// authenticated matches.
func principal(p *rbacv3.Principal, c rbacCtx) (bool, error) {
	switch r := p.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		return r.Any, nil
	case *rbacv3.Principal_Authenticated_:
		if c.principal == "" {
			return false, nil
		}
		if r.Authenticated.GetPrincipalName() == nil {
			return true, nil
		}
		return stringMatch(r.Authenticated.GetPrincipalName(), c.principal), nil
	case *rbacv3.Principal_AndIds:
		for _, q := range r.AndIds.GetIds() {
			ok, err := principal(q, c)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case *rbacv3.Principal_OrIds:
		return anyPrincipal(r.OrIds.GetIds(), c)
	case *rbacv3.Principal_NotId:
		ok, err := principal(r.NotId, c)
		return !ok, err
	case *rbacv3.Principal_Header:
		return c.headers != nil && headerMatch(r.Header, c.headers), nil
	}
	return false, fmt.Errorf("rbac principal %T is not modelled", p.GetIdentifier())
}
