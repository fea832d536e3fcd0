package traffic

import (
	"regexp"
	"sort"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// stringMatch follows Envoy's StringMatcher
// (source/common/common/matchers.cc, StringMatcherImpl::match): exact,
// prefix, suffix, contains or an RE2 regex that must match the whole value,
// each optionally ignoring case (not for regex). Go's regexp is RE2's
// syntax; a regex Go cannot compile does not match (render's Envoy-strict
// pass already refuses one Envoy could not compile).
func stringMatch(m *matcherv3.StringMatcher, v string) bool {
	if m == nil {
		return false
	}
	cmp := func(s string) (string, string) {
		if m.GetIgnoreCase() {
			return strings.ToLower(v), strings.ToLower(s)
		}
		return v, s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		a, b := cmp(p.Exact)
		return a == b
	case *matcherv3.StringMatcher_Prefix:
		a, b := cmp(p.Prefix)
		return strings.HasPrefix(a, b)
	case *matcherv3.StringMatcher_Suffix:
		a, b := cmp(p.Suffix)
		return strings.HasSuffix(a, b)
	case *matcherv3.StringMatcher_Contains:
		a, b := cmp(p.Contains)
		return strings.Contains(a, b)
	case *matcherv3.StringMatcher_SafeRegex:
		return fullRegex(p.SafeRegex.GetRegex(), v)
	}
	return false
}

// fullRegex reports whether re matches all of v: Envoy's safe_regex is a
// full match (RE2::FullMatch in source/common/common/regex.cc).
func fullRegex(re, v string) bool {
	r, err := regexp.Compile(`^(?:` + re + `)$`)
	return err == nil && r.MatchString(v)
}

// headerMatch follows Envoy's HeaderUtility::matchHeaders
// (source/common/http/header_utility.cc): a matcher without a specifier is
// present_match: true; a missing header matches only a present matcher
// asking for absence (present_match: false), or, inverted, one asking for
// presence, whatever else invert_match says (unless
// treat_missing_header_as_empty makes it ""); otherwise the value's match
// is inverted by invert_match. Names are compared in lower case, as
// Envoy's header map stores them.
func headerMatch(h *routev3.HeaderMatcher, headers map[string]string) bool {
	v, present := headers[strings.ToLower(h.GetName())]
	spec := h.GetHeaderMatchSpecifier()
	if spec == nil {
		spec = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	}
	p, isPresent := spec.(*routev3.HeaderMatcher_PresentMatch)
	if !present && !h.GetTreatMissingHeaderAsEmpty() {
		if h.GetInvertMatch() {
			return isPresent && p.PresentMatch
		}
		return isPresent && !p.PresentMatch
	}
	var ok bool
	switch s := spec.(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		ok = s.PresentMatch
	case *routev3.HeaderMatcher_ExactMatch:
		ok = s.ExactMatch == "" || v == s.ExactMatch
	case *routev3.HeaderMatcher_PrefixMatch:
		ok = strings.HasPrefix(v, s.PrefixMatch)
	case *routev3.HeaderMatcher_SuffixMatch:
		ok = strings.HasSuffix(v, s.SuffixMatch)
	case *routev3.HeaderMatcher_ContainsMatch:
		ok = strings.Contains(v, s.ContainsMatch)
	case *routev3.HeaderMatcher_SafeRegexMatch:
		ok = fullRegex(s.SafeRegexMatch.GetRegex(), v)
	case *routev3.HeaderMatcher_StringMatch:
		ok = stringMatch(s.StringMatch, v)
	}
	return ok != h.GetInvertMatch()
}

// splitPath returns the path without its query and the query parameters.
func splitPath(p string) (string, map[string]string) {
	path, q, _ := strings.Cut(p, "?")
	path, _, _ = strings.Cut(path, "#")
	params := map[string]string{}
	for _, kv := range strings.Split(q, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := params[k]; !ok {
			params[k] = v
		}
	}
	return path, params
}

// routeMatches follows Envoy's RouteEntryImplBase::matchRoute and the
// path matchers of source/common/router/config_impl.cc:
//   - prefix compares against the whole :path, query string included
//     (PrefixRouteEntryImpl::matches uses headers.getPathValue());
//   - path (exact) and safe_regex compare against the path without query
//     and fragment (PathRouteEntryImpl / RegexRouteEntryImpl strip it with
//     Http::PathUtil::removeQueryAndFragment), regex as a full match;
//   - path_separated_prefix matches the prefix followed by "/", "?" or end;
//   - case_sensitive (default true) applies to prefix and path only;
//   - every header matcher must match (:method is a header), every query
//     parameter matcher must match, and grpc: {} requires content-type
//     application/grpc.
func routeMatches(m *routev3.RouteMatch, fullPath string, headers map[string]string) bool {
	path, params := splitPath(fullPath)
	cs := m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	fold := func(s string) string {
		if cs {
			return s
		}
		return strings.ToLower(s)
	}
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		if !strings.HasPrefix(fold(fullPath), fold(p.Prefix)) {
			return false
		}
	case *routev3.RouteMatch_Path:
		if fold(path) != fold(p.Path) {
			return false
		}
	case *routev3.RouteMatch_SafeRegex:
		if !fullRegex(p.SafeRegex.GetRegex(), path) {
			return false
		}
	case *routev3.RouteMatch_PathSeparatedPrefix:
		rest, ok := strings.CutPrefix(fold(path), fold(p.PathSeparatedPrefix))
		if !ok || (rest != "" && rest[0] != '/') {
			return false
		}
	default:
		return false // connect_matcher and path_match_policy: not rendered
	}
	for _, h := range m.GetHeaders() {
		if !headerMatch(h, headers) {
			return false
		}
	}
	for _, q := range m.GetQueryParameters() {
		v, ok := params[q.GetName()]
		switch {
		case q.GetPresentMatch():
			if !ok {
				return false
			}
		case !ok || !stringMatch(q.GetStringMatch(), v):
			return false
		}
	}
	if m.GetGrpc() != nil && !strings.HasPrefix(headers["content-type"], "application/grpc") {
		return false
	}
	return true
}

// selectVirtualHost follows Envoy's RouteMatcher::findVirtualHost
// (source/common/router/config_impl.cc) and the domains rule of
// route.v3.VirtualHost: the host (lower case, port included as sent) is
// looked up as an exact domain first, then among suffix wildcards
// "*.foo.com" longest first, then prefix wildcards "foo.*" longest first,
// then "*". A wildcard must match at least one character
// (findWildcardVirtualHost skips wildcards not shorter than the host:
// "*.foo.com" does not match ".foo.com"). grpc-go's
// FindBestMatchingVirtualHost (xds/internal/xdsclient/xdsresource) keeps
// the same order.
func selectVirtualHost(vhs []*routev3.VirtualHost, host string) (*routev3.VirtualHost, string) {
	host = strings.ToLower(host)
	type cand struct {
		vh     *routev3.VirtualHost
		domain string
		n      int
	}
	var suffix, prefix []cand
	var star *routev3.VirtualHost
	for _, vh := range vhs {
		for _, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			switch {
			case d == "*":
				if star == nil {
					star = vh
				}
			case d == host:
				return vh, d
			case strings.HasPrefix(d, "*"):
				if lit := d[1:]; len(host) > len(lit) && strings.HasSuffix(host, lit) {
					suffix = append(suffix, cand{vh, d, len(lit)})
				}
			case strings.HasSuffix(d, "*"):
				if lit := d[:len(d)-1]; len(host) > len(lit) && strings.HasPrefix(host, lit) {
					prefix = append(prefix, cand{vh, d, len(lit)})
				}
			}
		}
	}
	for _, list := range [][]cand{suffix, prefix} {
		if len(list) > 0 {
			sort.SliceStable(list, func(i, j int) bool { return list[i].n > list[j].n })
			return list[0].vh, list[0].domain
		}
	}
	if star != nil {
		return star, "*"
	}
	return nil, ""
}

// conn is what a listener sees of a connection.
type conn struct {
	dstIP     string
	dstPort   int
	sni       string
	transport string // "raw_buffer" or "tls"
	alpn      []string
}

// selectChain follows Envoy's FilterChainManagerImpl::findFilterChain
// (source/common/listener_manager/filter_chain_manager_impl.cc) and the
// order documented on listener.v3.FilterChainMatch
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/listener/v3/listener_components.proto,
// "the most specific value … www.example.com, then *.example.com, then
// *.com, then any filter chain without server_names"): destination port,
// destination IP (prefix_ranges, longest prefix), server name (exact, then
// the longest "*.suffix" wildcard), transport protocol, application
// protocols (then source criteria, which render never sets). At each
// level the chains that name the connection's value win over those that
// leave the field unset; none of either means no chain, and the
// listener's default_filter_chain (if any) takes the connection.
func selectChain(l *listenerv3.Listener, c conn) (*listenerv3.FilterChain, string) {
	cands := l.GetFilterChains()
	levels := []func(*listenerv3.FilterChainMatch) (set bool, rank int){
		func(m *listenerv3.FilterChainMatch) (bool, int) {
			if m.GetDestinationPort() == nil {
				return false, 0
			}
			return true, b2i(int(m.GetDestinationPort().GetValue()) == c.dstPort)
		},
		func(m *listenerv3.FilterChainMatch) (bool, int) {
			if len(m.GetPrefixRanges()) == 0 {
				return false, 0
			}
			best := 0
			for _, r := range m.GetPrefixRanges() {
				if n := prefixLen(r.GetAddressPrefix(), int(r.GetPrefixLen().GetValue()), c.dstIP); n > best {
					best = n
				}
			}
			return true, best
		},
		func(m *listenerv3.FilterChainMatch) (bool, int) {
			if len(m.GetServerNames()) == 0 {
				return false, 0
			}
			best := 0
			for _, n := range m.GetServerNames() {
				switch {
				case strings.EqualFold(n, c.sni):
					best = max(best, 1<<20)
				case strings.HasPrefix(n, "*.") && strings.HasSuffix(strings.ToLower(c.sni), strings.ToLower(n[1:])):
					best = max(best, len(n))
				}
			}
			return true, best
		},
		func(m *listenerv3.FilterChainMatch) (bool, int) {
			if m.GetTransportProtocol() == "" {
				return false, 0
			}
			return true, b2i(m.GetTransportProtocol() == c.transport)
		},
		func(m *listenerv3.FilterChainMatch) (bool, int) {
			if len(m.GetApplicationProtocols()) == 0 {
				return false, 0
			}
			for _, p := range m.GetApplicationProtocols() {
				for _, a := range c.alpn {
					if p == a {
						return true, 1
					}
				}
			}
			return true, 0
		},
	}
	for _, level := range levels {
		var named, unset []*listenerv3.FilterChain
		best := 0
		for _, fc := range cands {
			set, rank := level(fc.GetFilterChainMatch())
			switch {
			case !set:
				unset = append(unset, fc)
			case rank > best:
				named, best = []*listenerv3.FilterChain{fc}, rank
			case rank == best && rank > 0:
				named = append(named, fc)
			}
		}
		if len(named) > 0 {
			cands = named
		} else {
			cands = unset
		}
		if len(cands) == 0 {
			break
		}
	}
	if len(cands) > 0 {
		return cands[0], "filter chain"
	}
	if d := l.GetDefaultFilterChain(); d != nil {
		return d, "default filter chain"
	}
	return nil, ""
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// prefixLen is plen+1 when ip lies in prefix/plen (so /0 still ranks
// above no match), else 0. IPv4 dotted quads only; other addresses match
// only an equal prefix.
func prefixLen(prefix string, plen int, ip string) int {
	a, ok1 := ipv4(prefix)
	b, ok2 := ipv4(ip)
	if !ok1 || !ok2 {
		if prefix == ip {
			return plen + 1
		}
		return 0
	}
	if plen > 32 {
		return 0
	}
	mask := uint32(0)
	if plen > 0 {
		mask = ^uint32(0) << (32 - plen)
	}
	if a&mask == b&mask {
		return plen + 1
	}
	return 0
}

func ipv4(s string) (uint32, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return 0, false
	}
	var v uint32
	for _, p := range parts {
		n := 0
		if p == "" || len(p) > 3 {
			return 0, false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return 0, false
		}
		v = v<<8 | uint32(n)
	}
	return v, true
}
