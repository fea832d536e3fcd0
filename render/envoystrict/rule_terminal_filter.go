package envoystrict

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// Rule: a filter chain ends with exactly one terminal filter: the router
// last in an HTTP connection manager, and a terminal network filter
// (http_connection_manager, tcp_proxy) last in a listener's filter chain,
// with nothing after it.
//
// Envoy: Config::Utility::validateTerminalFilters
// (source/common/config/utility.h), called for HTTP filters by
// FilterChainUtility / HttpConnectionManagerConfig::processFilter
// (source/extensions/filters/network/http_connection_manager/config.cc)
// and for network filters by ListenerImpl / ListenerManagerImpl::
// createNetworkFilterFactoryList (source/common/listener_manager/
// listener_manager_impl.cc): "terminal filter named {} of type {} must be
// the last filter in a {} filter chain" and "non-terminal filter named {}
// of type {} is the last filter in a {} filter chain". Whether a filter is
// terminal is a property of its type (isTerminalFilterByProto), so the
// check goes by type URL, not by name. Two cases are refused here that
// Envoy lets pass, so this is stricter: an HCM with no HTTP filters (render
// always means the router to be there) and a filter chain with no network
// filters (Envoy accepts it, but can only close the connections it takes).

// terminalHTTP and terminalNetwork are the terminal filter types render
// can emit.
var (
	terminalHTTP    = map[string]bool{typeRouter: true}
	terminalNetwork = map[string]bool{typeHCM: true, typeTCPProxy: true,
		"type.googleapis.com/envoy.extensions.filters.network.direct_response.v3.Config": true}
)

// httpFilterOrder checks an HCM's HTTP filters.
func (w *walk) httpFilterOrder(h *hcmv3.HttpConnectionManager) {
	fs := h.HttpFilters
	if len(fs) == 0 || !terminalHTTP[fs[len(fs)-1].GetTypedConfig().GetTypeUrl()] {
		w.errorf(CodeFilterOrder, "http connection manager %q does not end with the router filter", h.StatPrefix)
	}
	for _, f := range fs[:max(len(fs)-1, 0)] {
		if terminalHTTP[f.GetTypedConfig().GetTypeUrl()] {
			w.errorf(CodeFilterOrder, "terminal filter %q is not last in http connection manager %q", f.Name, h.StatPrefix)
		}
	}
}

// networkFilterOrder checks a listener filter chain's network filters.
func (w *walk) networkFilterOrder(fc *listenerv3.FilterChain) {
	fs := fc.Filters
	if len(fs) == 0 {
		w.errorf(CodeFilterOrder, "filter chain %q has no network filters", fc.Name)
		return
	}
	if last := fs[len(fs)-1]; !terminalNetwork[last.GetTypedConfig().GetTypeUrl()] {
		w.errorf(CodeFilterOrder, "filter chain %q ends with non-terminal filter %q", fc.Name, last.Name)
	}
	for _, f := range fs[:len(fs)-1] {
		if terminalNetwork[f.GetTypedConfig().GetTypeUrl()] {
			w.errorf(CodeFilterOrder, "terminal filter %q is not last in filter chain %q", f.Name, fc.Name)
		}
	}
}
