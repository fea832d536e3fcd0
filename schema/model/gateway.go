package model

import "slices"

// The stream route rule, in one place for policies (which judge it) and
// render (which builds it); policies/streams.go explains it in full.
//
// An ingress listener is a stream listener when Envoy forwards its bytes
// instead of routing HTTP requests: protocol tcp or tls, https without a
// tls block, or any listener whose tls.mode is PASSTHROUGH. A gateway route
// whose port is a stream listener's port is a stream route: it forwards
// connections by SNI host. On a port shared by a terminated and a stream
// listener, a route is a stream route only when every host it lists is a
// host of a stream listener on that port. Egress gateways take their ports
// from the externals routed through them, so they have no stream listeners.

// IsStreamListener reports whether l, a listener of g, forwards bytes
// rather than HTTP requests.
func (g *Gateway) IsStreamListener(l GatewayListener) bool {
	if g.Kind != GatewayIngress {
		return false
	}
	if l.TLS != nil && l.TLS.Mode == TLSPassthrough {
		return true
	}
	if l.Protocol == ProtocolHTTPS {
		return l.TLS == nil
	}
	return !l.Protocol.IsHTTP()
}

// StreamRoute reports whether route r of g is bound to stream listeners.
func (g *Gateway) StreamRoute(r Route) bool {
	if g == nil || g.Kind != GatewayIngress || r.Port == 0 {
		return false
	}
	stream, http := false, false
	for _, l := range g.Listeners {
		if l.Port != r.Port {
			continue
		}
		if g.IsStreamListener(l) {
			stream = true
		} else {
			http = true
		}
	}
	if !stream || !http {
		return stream
	}
	if len(r.Hosts) == 0 {
		return false
	}
	for _, h := range r.Hosts {
		if !g.StreamHost(r.Port, h) {
			return false
		}
	}
	return true
}

// StreamHost reports whether a stream listener of g on port lists host (an
// empty host list counts as "*").
func (g *Gateway) StreamHost(port int, host string) bool {
	for _, l := range g.Listeners {
		if l.Port != port || !g.IsStreamListener(l) {
			continue
		}
		if len(l.Hosts) == 0 && host == "*" || slices.Contains(l.Hosts, host) {
			return true
		}
	}
	return false
}

// StreamRouteFor returns the index of the route that forwards host on
// stream listener port port, or -1: the first stream route on the port
// whose hosts list the host or, unless the port also has HTTP listeners,
// that lists no hosts.
func (g *Gateway) StreamRouteFor(port int, host string) int {
	for i, r := range g.Routes {
		if r.Port == port && g.StreamRoute(r) && (len(r.Hosts) == 0 || slices.Contains(r.Hosts, host)) {
			return i
		}
	}
	return -1
}

// HTTPRouteApplies reports whether route r of g applies to HTTP requests
// for host arriving on port: r names no port or this one (and is no stream
// route), and r names no hosts or lists host exactly. host "*" stands for
// a listener without hosts, which every route applies to. It is the one
// host rule for gateway HTTP routes: render builds ingress listener hosts
// and egress external hosts with it, and policies judge egress routes by
// it (GM0202, GM0205).
func (g *Gateway) HTTPRouteApplies(r Route, port int, host string) bool {
	if r.Port != 0 && (r.Port != port || g.StreamRoute(r)) {
		return false
	}
	return len(r.Hosts) == 0 || host == "*" || slices.Contains(r.Hosts, host)
}
