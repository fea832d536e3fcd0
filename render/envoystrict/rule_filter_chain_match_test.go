package envoystrict

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRuleFilterChainMatch(t *testing.T) {
	chains := func(ms ...*listenerv3.FilterChainMatch) *listenerv3.Listener {
		l := &listenerv3.Listener{Name: "m", Address: addr("0.0.0.0", 443)}
		for i, m := range ms {
			l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
				Name: string(rune('a' + i)), FilterChainMatch: m, Filters: []*listenerv3.Filter{tcpFilter(t, "c")}})
		}
		return l
	}
	sni := func(names ...string) *listenerv3.FilterChainMatch {
		return &listenerv3.FilterChainMatch{ServerNames: names}
	}
	port := func(p uint32) *listenerv3.FilterChainMatch {
		return &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(p)}
	}
	cidr := func(ip string, bits uint32) *listenerv3.FilterChainMatch {
		return &listenerv3.FilterChainMatch{PrefixRanges: []*corev3.CidrRange{{AddressPrefix: ip, PrefixLen: wrapperspb.UInt32(bits)}}}
	}
	runCases(t, []ruleCase{
		{name: "two chains without a match", code: CodeFilterChainMatch, want: `filter chains "a" and "b" have the same match`,
			own: with(t, chains(nil, nil))},
		{name: "nil and empty match are the same", code: CodeFilterChainMatch, want: "same match",
			own: with(t, chains(nil, &listenerv3.FilterChainMatch{}))},
		{name: "same server name", code: CodeFilterChainMatch, want: "same match",
			own: with(t, chains(sni("x.example.com"), sni("x.example.com")))},
		{name: "overlapping server names", code: CodeFilterChainMatch, want: "overlapping",
			own: with(t, chains(sni("x.example.com", "y.example.com"), sni("Y.example.com")))},
		{name: "equal CIDRs in different spellings", code: CodeFilterChainMatch, want: "overlapping",
			own: with(t, chains(cidr("10.1.2.3", 8), cidr("10.0.0.0", 8)))},
		{name: "partial wildcard", code: CodeFilterChainMatch, want: "partial wildcard",
			own: with(t, chains(sni("x*.example.com")))},
		{name: "suffix_len", code: CodeFilterChainMatch, want: "not implemented",
			own: with(t, chains(&listenerv3.FilterChainMatch{SuffixLen: wrapperspb.UInt32(1)}))},
		{name: "bad CIDR", code: CodeFilterChainMatch, want: "not a CIDR",
			own: with(t, chains(cidr("10.0.0.0", 40)))},
		{name: "different server names", own: with(t, chains(sni("x.example.com"), sni("*.example.com"), nil))},
		{name: "one chain per destination port", own: with(t, chains(port(9080), port(9090), nil))},
		{name: "tls and raw_buffer", own: with(t, chains(&listenerv3.FilterChainMatch{TransportProtocol: "tls"}, &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"}))},
		{name: "filter_chain_matcher skips the rule", own: with(t, func() *listenerv3.Listener {
			l := chains(nil, nil)
			setMatcher(l)
			return l
		}())},
	})
}
