package envoystrict

import (
	"slices"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// Rule: within one route configuration every virtual host domain is
// unique, compared without case, and "*" appears at most once.
//
// Envoy: RouteMatcher's constructor (source/common/router/config_impl.cc)
// lower-cases each domain (Http::LowerCaseString) and files it as the
// default virtual host ("*"), a suffix wildcard ("*.example.com", keyed by
// length and suffix), a prefix wildcard ("example.*") or an exact name;
// a second "*" throws "Only a single wildcard domain is permitted in route
// {}", any other repeat "Only unique values for domains are permitted.
// Duplicate entry of domain {} in route {}". Keying wildcards by length
// and the rest of the string makes every repeat an exact repeat of the
// lower-cased domain, which is what this compares.

// vhostDomains checks one route configuration's domains.
func (w *walk) vhostDomains(rc *routev3.RouteConfiguration) {
	n := 0
	for _, vh := range rc.VirtualHosts {
		n += len(vh.Domains)
	}
	// Repeats are rare: look for one in a sorted list before paying for
	// a map (route configs are walked once per distinct config, and a
	// sidecar's outbound ones are distinct per dependency set).
	keys := make([]string, 0, n)
	for _, vh := range rc.VirtualHosts {
		for _, d := range vh.Domains {
			keys = append(keys, strings.ToLower(d))
		}
	}
	slices.Sort(keys)
	if !hasAdjacentRepeat(keys) {
		return
	}
	seen := make(map[string]string, n)
	for _, vh := range rc.VirtualHosts {
		for _, d := range vh.Domains {
			key := strings.ToLower(d)
			first, dup := seen[key]
			if !dup {
				seen[key] = vh.Name
				continue
			}
			if key == "*" {
				w.errorf(CodeDomains, "virtual hosts %q and %q both have the wildcard domain \"*\" (Envoy allows one)", first, vh.Name)
			} else {
				w.errorf(CodeDomains, "domain %q is in virtual host %q and again in %q", d, first, vh.Name)
			}
		}
	}
}

// hasAdjacentRepeat reports whether a sorted list repeats a value.
func hasAdjacentRepeat(sorted []string) bool {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return true
		}
	}
	return false
}
