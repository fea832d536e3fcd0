package traffic

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func vh(name string, domains ...string) *routev3.VirtualHost {
	return &routev3.VirtualHost{Name: name, Domains: domains}
}

// Each case breaks one rule of Envoy's virtual host order: exact before
// suffix wildcards, the longest suffix first, suffixes before prefixes,
// "*" last, and a wildcard must match at least one character.
func TestSelectVirtualHost(t *testing.T) {
	cases := []struct {
		name string
		vhs  []*routev3.VirtualHost
		host string
		want string
	}{
		{"exact beats wildcard", []*routev3.VirtualHost{vh("star", "*"), vh("suffix", "*.example.com"), vh("exact", "api.example.com")}, "api.example.com", "exact"},
		{"longest suffix wins", []*routev3.VirtualHost{vh("short", "*.com"), vh("long", "*.example.com")}, "api.example.com", "long"},
		{"suffix before prefix", []*routev3.VirtualHost{vh("prefix", "api.*"), vh("suffix", "*.com")}, "api.example.com", "suffix"},
		{"prefix before star", []*routev3.VirtualHost{vh("star", "*"), vh("prefix", "api.*")}, "api.example.com", "prefix"},
		{"star last", []*routev3.VirtualHost{vh("star", "*"), vh("other", "other.com")}, "api.example.com", "star"},
		{"wildcard needs a character", []*routev3.VirtualHost{vh("suffix", "*example.com")}, "example.com", ""},
		{"host is case-insensitive", []*routev3.VirtualHost{vh("exact", "api.example.com")}, "API.Example.com", "exact"},
		{"port is part of the host", []*routev3.VirtualHost{vh("noport", "reviews"), vh("port", "reviews:9080")}, "reviews:9080", "port"},
		{"no match", []*routev3.VirtualHost{vh("exact", "a.com")}, "b.com", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := selectVirtualHost(c.vhs, c.host)
			if got.GetName() != c.want {
				t.Errorf("host %q: got %q, want %q", c.host, got.GetName(), c.want)
			}
		})
	}
}

func exactHeader(name, v string) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}}}
}

// Each case breaks one rule of Envoy's route matching.
func TestRouteMatches(t *testing.T) {
	prefix := func(p string) *routev3.RouteMatch {
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p}}
	}
	path := func(p string) *routev3.RouteMatch {
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: p}}
	}
	regex := func(p string) *routev3.RouteMatch {
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: p}}}
	}
	with := func(m *routev3.RouteMatch, f func(*routev3.RouteMatch)) *routev3.RouteMatch { f(m); return m }
	cases := []struct {
		name    string
		m       *routev3.RouteMatch
		path    string
		headers map[string]string
		want    bool
	}{
		{"prefix", prefix("/api"), "/api/v1", nil, true},
		{"prefix is not a segment match", prefix("/api"), "/apis", nil, true},
		{"prefix misses", prefix("/api"), "/v1/api", nil, false},
		{"prefix sees the query", prefix("/a?x=1"), "/a?x=1", nil, true},
		{"path ignores the query", path("/login"), "/login?next=/", nil, true},
		{"path is exact", path("/login"), "/login/", nil, false},
		{"path is case-sensitive by default", path("/Login"), "/login", nil, false},
		{"case_sensitive false", with(path("/Login"), func(m *routev3.RouteMatch) { m.CaseSensitive = wrapperspb.Bool(false) }), "/login", nil, true},
		{"regex is a full match", regex("/r/[0-9]+"), "/r/12/x", nil, false},
		{"regex matches without the query", regex("/r/[0-9]+"), "/r/12?x=1", nil, true},
		{"header exact", with(prefix("/"), func(m *routev3.RouteMatch) { m.Headers = []*routev3.HeaderMatcher{exactHeader("end-user", "jason")} }), "/", map[string]string{"end-user": "jason"}, true},
		{"header exact misses", with(prefix("/"), func(m *routev3.RouteMatch) { m.Headers = []*routev3.HeaderMatcher{exactHeader("end-user", "jason")} }), "/", map[string]string{"end-user": "bob"}, false},
		{"missing header does not match", with(prefix("/"), func(m *routev3.RouteMatch) { m.Headers = []*routev3.HeaderMatcher{exactHeader("end-user", "jason")} }), "/", nil, false},
		{"missing header with invert still does not match", with(prefix("/"), func(m *routev3.RouteMatch) {
			h := exactHeader("end-user", "jason")
			h.InvertMatch = true
			m.Headers = []*routev3.HeaderMatcher{h}
		}), "/", nil, false},
		{"other value with invert matches", with(prefix("/"), func(m *routev3.RouteMatch) {
			h := exactHeader("end-user", "jason")
			h.InvertMatch = true
			m.Headers = []*routev3.HeaderMatcher{h}
		}), "/", map[string]string{"end-user": "bob"}, true},
		{"missing header treated as empty", with(prefix("/"), func(m *routev3.RouteMatch) {
			h := exactHeader("end-user", "jason")
			h.InvertMatch, h.TreatMissingHeaderAsEmpty = true, true
			m.Headers = []*routev3.HeaderMatcher{h}
		}), "/", nil, true},
		{"inverted presence matches absence", with(prefix("/"), func(m *routev3.RouteMatch) {
			m.Headers = []*routev3.HeaderMatcher{{Name: "x-canary", InvertMatch: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}}
		}), "/", nil, true},
		{"present", with(prefix("/"), func(m *routev3.RouteMatch) {
			m.Headers = []*routev3.HeaderMatcher{{Name: "x-canary", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}}
		}), "/", map[string]string{"x-canary": ""}, true},
		{"present false matches absence", with(prefix("/"), func(m *routev3.RouteMatch) {
			m.Headers = []*routev3.HeaderMatcher{{Name: "x-canary", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}}}
		}), "/", map[string]string{"x-canary": "1"}, false},
		{"method is the :method header", with(prefix("/"), func(m *routev3.RouteMatch) { m.Headers = []*routev3.HeaderMatcher{exactHeader(":method", "GET")} }), "/", map[string]string{":method": "POST"}, false},
		{"header names are case-insensitive", with(prefix("/"), func(m *routev3.RouteMatch) { m.Headers = []*routev3.HeaderMatcher{exactHeader("End-User", "jason")} }), "/", map[string]string{"end-user": "jason"}, true},
		{"query parameter", with(prefix("/"), func(m *routev3.RouteMatch) {
			m.QueryParameters = []*routev3.QueryParameterMatcher{{Name: "v", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "2"}}}}}
		}), "/x?v=2", nil, true},
		{"query parameter misses", with(prefix("/"), func(m *routev3.RouteMatch) {
			m.QueryParameters = []*routev3.QueryParameterMatcher{{Name: "v", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "2"}}}}}
		}), "/x?v=3", nil, false},
		{"grpc needs the content type", with(prefix("/"), func(m *routev3.RouteMatch) { m.Grpc = &routev3.RouteMatch_GrpcRouteMatchOptions{} }), "/", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := routeMatches(c.m, c.path, c.headers); got != c.want {
				t.Errorf("path %q headers %v: got %v, want %v", c.path, c.headers, got, c.want)
			}
		})
	}
}

func chain(name string, m *listenerv3.FilterChainMatch) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Name: name, FilterChainMatch: m}
}

// Each case breaks one level of Envoy's filter chain selection order.
func TestSelectChain(t *testing.T) {
	port := func(p uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(p) }
	cases := []struct {
		name   string
		chains []*listenerv3.FilterChain
		def    bool
		c      conn
		want   string
	}{
		{"destination port", []*listenerv3.FilterChain{chain("any", nil), chain("9080", &listenerv3.FilterChainMatch{DestinationPort: port(9080)})}, false, conn{dstPort: 9080}, "9080"},
		{"unset port catches others", []*listenerv3.FilterChain{chain("any", nil), chain("9080", &listenerv3.FilterChainMatch{DestinationPort: port(9080)})}, false, conn{dstPort: 80}, "any"},
		{"port before server name", []*listenerv3.FilterChain{
			chain("sni", &listenerv3.FilterChainMatch{ServerNames: []string{"a.com"}}),
			chain("port", &listenerv3.FilterChainMatch{DestinationPort: port(443)}),
		}, false, conn{dstPort: 443, sni: "a.com"}, "port"},
		{"longest prefix range", []*listenerv3.FilterChain{
			chain("wide", &listenerv3.FilterChainMatch{PrefixRanges: []*corev3.CidrRange{{AddressPrefix: "10.0.0.0", PrefixLen: port(8)}}}),
			chain("narrow", &listenerv3.FilterChainMatch{PrefixRanges: []*corev3.CidrRange{{AddressPrefix: "10.1.0.0", PrefixLen: port(16)}}}),
		}, false, conn{dstIP: "10.1.2.3"}, "narrow"},
		{"exact server name before wildcard", []*listenerv3.FilterChain{
			chain("wild", &listenerv3.FilterChainMatch{ServerNames: []string{"*.example.com"}}),
			chain("exact", &listenerv3.FilterChainMatch{ServerNames: []string{"api.example.com"}}),
		}, false, conn{sni: "api.example.com"}, "exact"},
		{"wildcard server name", []*listenerv3.FilterChain{
			chain("wild", &listenerv3.FilterChainMatch{ServerNames: []string{"*.example.com"}}),
		}, false, conn{sni: "api.example.com"}, "wild"},
		{"transport protocol", []*listenerv3.FilterChain{
			chain("tls", &listenerv3.FilterChainMatch{TransportProtocol: "tls"}),
			chain("raw", &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"}),
		}, false, conn{transport: "raw_buffer"}, "raw"},
		{"named level with no match and no unset falls to default", []*listenerv3.FilterChain{
			chain("9080", &listenerv3.FilterChainMatch{DestinationPort: port(9080)}),
		}, true, conn{dstPort: 80}, "default"},
		{"nothing and no default", []*listenerv3.FilterChain{
			chain("9080", &listenerv3.FilterChainMatch{DestinationPort: port(9080)}),
		}, false, conn{dstPort: 80}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := &listenerv3.Listener{FilterChains: c.chains}
			if c.def {
				l.DefaultFilterChain = chain("default", nil)
			}
			got, _ := selectChain(l, c.c)
			if got.GetName() != c.want {
				t.Errorf("got %q, want %q", got.GetName(), c.want)
			}
		})
	}
}

func principalExact(id string) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
		PrincipalName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}}}}}
}

// Each case breaks one rule of the RBAC engine.
func TestRBACDecide(t *testing.T) {
	anyPerm := []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}}
	get := []*rbacv3.Permission{{Rule: &rbacv3.Permission_Header{Header: exactHeader(":method", "GET")}}}
	pp := "spiffe://cluster.local/ns/default/sa/productpage"
	cases := []struct {
		name  string
		rbac  *rbacv3.RBAC
		ctx   rbacCtx
		allow bool
	}{
		{"allow matches", &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"a": {Permissions: anyPerm, Principals: []*rbacv3.Principal{principalExact(pp)}}}}, rbacCtx{principal: pp}, true},
		{"allow without a match denies", &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"a": {Permissions: anyPerm, Principals: []*rbacv3.Principal{principalExact(pp)}}}}, rbacCtx{principal: "spiffe://x"}, false},
		{"no peer certificate is not authenticated", &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"a": {Permissions: anyPerm, Principals: []*rbacv3.Principal{principalExact(pp)}}}}, rbacCtx{}, false},
		{"deny matches", &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: map[string]*rbacv3.Policy{"d": {Permissions: anyPerm, Principals: []*rbacv3.Principal{principalExact(pp)}}}}, rbacCtx{principal: pp}, false},
		{"deny without a match allows", &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: map[string]*rbacv3.Policy{"d": {Permissions: anyPerm, Principals: []*rbacv3.Principal{principalExact(pp)}}}}, rbacCtx{principal: "spiffe://x"}, true},
		{"permission and principal must both match", &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"a": {Permissions: get, Principals: []*rbacv3.Principal{principalExact(pp)}}}}, rbacCtx{principal: pp, headers: map[string]string{":method": "POST"}}, false},
		{"http permission never matches tcp", &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"a": {Permissions: get, Principals: []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}}}}}, rbacCtx{}, false},
		{"destination port", &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"a": {Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: 9080}}}, Principals: []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}}}}}, rbacCtx{dstPort: 9090}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := rbacDecide(c.rbac, c.ctx)
			if err != nil || got != c.allow {
				t.Errorf("got allowed=%v err=%v, want %v", got, err, c.allow)
			}
		})
	}
}
