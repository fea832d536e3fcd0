package envoystrict

import (
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
)

func TestRuleTerminalFilter(t *testing.T) {
	fault := &hcmv3.HttpFilter{Name: "envoy.filters.http.fault", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &faultv3.HTTPFault{})}}
	withFilters := func(fs ...*hcmv3.HttpFilter) *listenerv3.Listener {
		h := hcm(t, "r")
		h.HttpFilters = fs
		l := httpListener(t, "l", "0.0.0.0", 80, "r")
		l.FilterChains[0].Filters = []*listenerv3.Filter{hcmNetFilter(t, h)}
		return l
	}
	rbac := &listenerv3.Filter{Name: "envoy.filters.network.rbac", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &rbacnetv3.RBAC{StatPrefix: "x"})}}
	network := func(fs ...*listenerv3.Filter) *listenerv3.Listener {
		l := tcpListener(t, "t", "0.0.0.0", 81, "c")
		l.FilterChains[0].Filters = fs
		return l
	}
	runCases(t, []ruleCase{
		{name: "router not last", code: CodeFilterOrder, want: "does not end with the router",
			own: with(t, withFilters(routerFilter(t), fault))},
		{name: "no http filters", code: CodeFilterOrder, want: "does not end with the router",
			own: with(t, withFilters())},
		{name: "router twice", code: CodeFilterOrder, want: `terminal filter "envoy.filters.http.router" is not last`,
			own: with(t, withFilters(routerFilter(t), routerFilter(t)))},
		{name: "fault then router", own: with(t, withFilters(fault, routerFilter(t)))},
		{name: "network filter after tcp_proxy", code: CodeFilterOrder, want: "is not last in filter chain",
			own: with(t, network(tcpFilter(t, "c"), rbac))},
		{name: "network chain ends with rbac", code: CodeFilterOrder, want: "non-terminal",
			own: with(t, network(rbac))},
		{name: "no network filters", code: CodeFilterOrder, want: "no network filters",
			own: with(t, network())},
		{name: "rbac then tcp_proxy", own: with(t, network(rbac, tcpFilter(t, "c")))},
	})
}
