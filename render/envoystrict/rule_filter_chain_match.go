package envoystrict

import (
	"net/netip"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
)

// Rule: no two filter chains of one listener can match the same
// connection, and every match is one Envoy can index.
//
// Envoy: FilterChainManagerImpl::addFilterChains
// (source/common/listener_manager/filter_chain_manager_impl.cc).
// verifyNoDuplicateMatchers refuses two equal FilterChainMatch messages
// ("filter chain '{}' has the same matching rules defined as '{}'") and
// matches with address_suffix or suffix_len ("contains unimplemented
// fields"). setupFilterChainMatcher then files each chain under every
// combination of its repeated fields (destination port → destination IP
// → server name → transport protocol → application protocol → direct
// source IP → source type → source IP → source port, the
// addFilterChainFor* cascade) and refuses a chain whose combination is
// already taken ("multiple filter chains with overlapping matching rules
// are defined"); it also refuses partial wildcards in server_names
// ("partial wildcards are not supported") and prefix ranges that
// CidrRange::create rejects. This rule expands matches the same way, with
// the same normalisation (lower-cased server names, "*.x" filed as ".x",
// CIDRs in canonical form).
//
// Listeners with a filter_chain_matcher skip all of this in Envoy (chains
// are picked by name), and here.

// filterChainMatches checks one listener's filter chain matches.
func (w *walk) filterChainMatches(l *listenerv3.Listener) {
	if l.GetFilterChainMatcher() != nil {
		return
	}
	type seen struct {
		match *listenerv3.FilterChainMatch
		name  string
	}
	var exact []seen
	combos := map[string]string{}
	for _, fc := range l.FilterChains {
		m := fc.GetFilterChainMatch()
		if m == nil {
			m = &listenerv3.FilterChainMatch{}
		}
		dup := false
		for _, s := range exact {
			if proto.Equal(s.match, m) {
				w.errorf(CodeFilterChainMatch, "filter chains %q and %q have the same match", s.name, fc.Name)
				dup = true
				break
			}
		}
		exact = append(exact, seen{m, fc.Name})
		if dup {
			continue
		}
		keys, ok := w.matchCombos(fc.Name, m)
		if !ok {
			continue
		}
		for _, k := range keys {
			if first, taken := combos[k]; taken {
				w.errorf(CodeFilterChainMatch, "filter chains %q and %q have overlapping matches (both take %s)", first, fc.Name, k)
				break
			}
			combos[k] = fc.Name
		}
	}
}

// matchCombos expands a match into Envoy's index keys, or reports why
// Envoy refuses the match.
func (w *walk) matchCombos(chain string, m *listenerv3.FilterChainMatch) ([]string, bool) {
	if m.GetAddressSuffix() != "" || m.GetSuffixLen() != nil {
		w.errorf(CodeFilterChainMatch, "filter chain %q: address_suffix and suffix_len are not implemented by Envoy", chain)
		return nil, false
	}
	cidrs := func(what string, rs []*corev3.CidrRange) ([]string, bool) {
		out := []string{}
		for _, r := range rs {
			a, err := netip.ParseAddr(r.GetAddressPrefix())
			bits := int(r.GetPrefixLen().GetValue())
			if err == nil && bits <= a.BitLen() {
				out = append(out, netip.PrefixFrom(a, bits).Masked().String())
				continue
			}
			w.errorf(CodeFilterChainMatch, "filter chain %q: %s %q/%d is not a CIDR range", chain, what, r.GetAddressPrefix(), bits)
			return nil, false
		}
		return orAny(out), true
	}
	dst, ok1 := cidrs("prefix range", m.GetPrefixRanges())
	direct, ok2 := cidrs("direct source prefix range", m.GetDirectSourcePrefixRanges())
	src, ok3 := cidrs("source prefix range", m.GetSourcePrefixRanges())
	if !ok1 || !ok2 || !ok3 {
		return nil, false
	}
	var names []string
	for _, n := range m.GetServerNames() {
		n = strings.ToLower(n)
		if strings.Contains(n, "*") && !strings.HasPrefix(n, "*.") {
			w.errorf(CodeFilterChainMatch, "filter chain %q: partial wildcard server name %q", chain, n)
			return nil, false
		}
		names = append(names, strings.TrimPrefix(n, "*"))
	}
	var srcPorts []string
	for _, p := range m.GetSourcePorts() {
		srcPorts = append(srcPorts, strconv.FormatUint(uint64(p), 10))
	}
	lists := [][]string{
		{strconv.FormatUint(uint64(m.GetDestinationPort().GetValue()), 10)},
		dst,
		orAny(names),
		{m.GetTransportProtocol()},
		orAny(m.GetApplicationProtocols()),
		direct,
		{m.GetSourceType().String()},
		src,
		orAny(srcPorts),
	}
	labels := [...]string{"destination_port", "prefix_range", "server_name", "transport_protocol",
		"application_protocol", "direct_source", "source_type", "source", "source_port"}
	// Every combination, first list outermost, each key built in one
	// buffer: one allocation per key (a chain usually has one).
	n := 1
	for _, l := range lists {
		n *= len(l)
	}
	keys := make([]string, 0, n)
	var expand func(i int, buf []byte)
	expand = func(i int, buf []byte) {
		if i == len(lists) {
			keys = append(keys, string(buf))
			return
		}
		for _, v := range lists[i] {
			b := buf
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, labels[i]...)
			b = append(b, '=')
			expand(i+1, strconv.AppendQuote(b, v))
		}
	}
	expand(0, make([]byte, 0, 256))
	return keys, true
}

// orAny is l, or the one empty value that stands for "any" in Envoy's index.
func orAny(l []string) []string {
	if len(l) == 0 {
		return []string{""}
	}
	return l
}
