package envoystrict

import (
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

func TestRuleRegex(t *testing.T) {
	re := func(s string) *matcherv3.RegexMatcher { return &matcherv3.RegexMatcher{Regex: s} }
	pathRegex := func(s string) *routev3.RouteConfiguration {
		rc := routeConfig("r", "c", []string{"a"})
		rc.VirtualHosts[0].Routes[0].Match = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: re(s)}}
		return rc
	}
	headerRegex := func(s string) *routev3.RouteConfiguration {
		rc := routeConfig("r", "c", []string{"a"})
		rc.VirtualHosts[0].Routes[0].Match.Headers = []*routev3.HeaderMatcher{{Name: "x-user",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: re(s)}}}}}
		return rc
	}
	rewrite := func(s string) *routev3.RouteConfiguration {
		rc := routeConfig("r", "c", []string{"a"})
		rc.VirtualHosts[0].Routes[0].GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: re(s), Substitution: "/"}
		return rc
	}
	rbacListener := func(s string) *listenerv3.Listener {
		h := hcm(t, "r")
		rules := &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"p": {
			Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
				Rule: &matcherv3.PathMatcher_Path{Path: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: re(s)}}}}}}},
			Principals: []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}},
		}}}
		h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "envoy.filters.http.rbac",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &rbachttpv3.RBAC{Rules: rules})}}}, h.HttpFilters...)
		l := httpListener(t, "l", "0.0.0.0", 80, "r")
		l.FilterChains[0].Filters = []*listenerv3.Filter{hcmNetFilter(t, h)}
		return l
	}
	runCases(t, []ruleCase{
		{name: "lookahead in a path regex", code: CodeInvalidValue, want: "RE2 has no lookaround", own: with(t, pathRegex(`/api/(?!internal)`))},
		{name: "unbalanced header regex", code: CodeInvalidValue, want: `invalid regex "(a"`, own: with(t, headerRegex(`(a`))},
		{name: "backreference in a rewrite", code: CodeInvalidValue, want: "invalid regex", own: with(t, rewrite(`(a)\1`))},
		{name: "rbac path regex", code: CodeInvalidValue, want: "rbac: invalid regex", own: with(t, rbacListener(`[z-a]`))},
		{name: "program too big", code: CodeInvalidValue, want: "program size", own: with(t, pathRegex(strings.Repeat("a", 200)))},
		{name: "valid regexes", own: with(t, pathRegex(`/api/v[0-9]+/.*`), rbacListener(`^/admin(/.*)?$`))},
		{name: "valid header regex", own: with(t, headerRegex(`^(alice|bob)$`))},
	})
}
