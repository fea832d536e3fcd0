package envoystrict

import (
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

func TestRuleListenerChains(t *testing.T) {
	matcher := func(names ...string) *listenerv3.Listener {
		l := &listenerv3.Listener{Name: "m", Address: addr("0.0.0.0", 90)}
		setMatcher(l)
		for _, n := range names {
			l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{Name: n, Filters: []*listenerv3.Filter{tcpFilter(t, "c")}})
		}
		return l
	}
	runCases(t, []ruleCase{
		{name: "no chains", code: CodeListener, want: "no filter chains",
			own: with(t, &listenerv3.Listener{Name: "e", Address: addr("0.0.0.0", 90)})},
		{name: "default chain only", own: with(t, &listenerv3.Listener{Name: "d", Address: addr("0.0.0.0", 90),
			DefaultFilterChain: &listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcpFilter(t, "c")}}})},
		{name: "API listener needs no chains", own: with(t, &listenerv3.Listener{Name: "api",
			ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, hcm(t, "r"))}})},
		{name: "matcher with a chain name twice", code: CodeListener, want: `filter chain name "x" twice`, own: with(t, matcher("x", "x"))},
		{name: "matcher with an unnamed chain", code: CodeListener, want: "without a name", own: with(t, matcher(""))},
		{name: "matcher with distinct names", own: with(t, matcher("x", "y"))},
	})
}
