package envoystrict

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// Rule: a listener has something to hand a connection to.
//
// ListenerImpl's constructor (source/common/listener_manager/
// listener_impl.cc, validateFilterChains) refuses a TCP listener with no
// filter_chains and no default_filter_chain: "error adding listener '{}':
// no filter chains specified". API listeners (proxyless gRPC) carry their
// HCM in api_listener instead and are exempt, as in Envoy.
//
// Duplicate filter chain names are refused only with a
// filter_chain_matcher (FilterChainManagerImpl::setupFilterChainMatcher,
// source/common/listener_manager/filter_chain_manager_impl.cc: "\"name\"
// field is duplicated"); with filter_chain_match, Envoy allows repeats and
// so does this check. Render does not use filter_chain_matcher, and a
// listener that does gets the name rule here.

// listenerChains checks one listener's chains.
func (w *walk) listenerChains(l *listenerv3.Listener) {
	if l.GetApiListener() != nil {
		return
	}
	if len(l.FilterChains) == 0 && l.DefaultFilterChain == nil {
		w.errorf(CodeListener, "no filter chains and no default filter chain")
	}
	if l.GetFilterChainMatcher() == nil {
		return
	}
	seen := map[string]bool{}
	for _, fc := range l.FilterChains {
		switch {
		case fc.Name == "":
			w.errorf(CodeListener, "a filter chain without a name on a listener with filter_chain_matcher")
		case seen[fc.Name]:
			w.errorf(CodeListener, "filter chain name %q twice on a listener with filter_chain_matcher", fc.Name)
		}
		seen[fc.Name] = true
	}
}
