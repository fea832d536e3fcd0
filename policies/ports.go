package policies

import (
	"fmt"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkPorts makes route, destination and mirror ports agree with the ports
// services, externals and gateway listeners declare (GM0202). A route bound
// to a missing port, or to a TCP/TLS port that no HTTP rule can apply to, is
// dropped by render; a destination port the target does not have renders a
// cluster with no endpoints. Both fail requests, not proxies, so only a check
// catches them.
func checkPorts(c *checker) {
	for _, rs := range c.routeSets() {
		if rs.service != nil && len(c.httpPorts(rs)) == 0 {
			c.report(CodePort, rs.path+".routes", "%s has no %s, so its routes never apply", rs.owner(), rs.httpWord())
			continue
		}
		for i, r := range rs.routes {
			rp := rs.routePath(i)
			if rs.service != nil && len(r.Hosts) > 0 {
				c.report(CodeServiceHosts, rp+".hosts", "service routes apply to every host of service %q, so hosts has no effect; only gateway routes select hosts", rs.name)
			}
			in, ok := c.routePorts(rs, rp, r)
			if !ok {
				continue
			}
			for k, d := range r.To {
				c.checkDestPort(rs, model.Index(rp+".to", k), d.Service, d.External, d.Port, in)
			}
			if r.Mirror != nil {
				c.checkDestPort(rs, rp+".mirror", r.Mirror.Service, "", r.Mirror.Port, in)
			}
		}
	}
}

// httpPorts returns the ports of a set's owner that HTTP routes apply to,
// in declaration order without repeats.
func (c *checker) httpPorts(rs routeSet) []int {
	var out []int
	if rs.service != nil {
		for _, p := range rs.service.Ports {
			if p.Protocol.IsHTTP() {
				out = appendUnique(out, p.Number)
			}
		}
		return out
	}
	for _, l := range rs.gateway.Listeners {
		if listenerRoutable(rs.gateway, l) {
			out = appendUnique(out, l.Port)
		}
	}
	return out
}

// listenerRoutable reports whether HTTP routes apply on a gateway listener:
// plain HTTP protocols, or HTTPS the gateway terminates. PASSTHROUGH hands
// the TLS stream on unread, so no HTTP rule can see it; on an ingress
// gateway such a listener takes stream routes instead (streams.go).
func listenerRoutable(g *model.Gateway, l model.GatewayListener) bool {
	if g.Kind == model.GatewayIngress {
		return !g.IsStreamListener(l)
	}
	if l.Protocol.IsHTTP() {
		return true
	}
	return l.Protocol == model.ProtocolHTTPS && (l.TLS == nil || l.TLS.Mode != model.TLSPassthrough)
}

// routePorts checks a route's own port and returns the ports requests can
// arrive on for it; ok is false when the port is wrong (already reported).
func (c *checker) routePorts(rs routeSet, rp string, r model.Route) (in []int, ok bool) {
	if r.Port == 0 {
		in := c.httpPorts(rs)
		if len(in) == 0 && rs.gateway != nil {
			c.report(CodePort, rp, "gateway %q has no HTTP listener, so a route without port never applies (set port to route a PASSTHROUGH or tcp listener)", rs.name)
			return nil, false
		}
		return in, true
	}
	if rs.service != nil {
		p := rs.service.Port(r.Port)
		switch {
		case p == nil:
			c.report(CodePort, rp+".port", "service %q has no port %d", rs.name, r.Port)
			return nil, false
		case !p.Protocol.IsHTTP():
			c.report(CodePort, rp+".port", "port %d is %q, routes need an HTTP port (http, http2, grpc)", r.Port, p.Protocol)
			return nil, false
		}
		return []int{r.Port}, true
	}
	var found *model.GatewayListener
	for i := range rs.gateway.Listeners {
		l := &rs.gateway.Listeners[i]
		if l.Port != r.Port {
			continue
		}
		if listenerRoutable(rs.gateway, *l) || rs.gateway.StreamRoute(r) {
			return []int{r.Port}, true
		}
		found = l
	}
	if found == nil {
		c.report(CodePort, rp+".port", "gateway %q has no listener on port %d", rs.name, r.Port)
	} else {
		c.report(CodePort, rp+".port", "listener port %d is %q, routes need an HTTP or terminated HTTPS listener", r.Port, found.Protocol)
	}
	return nil, false
}

// checkDestPort checks the port of one destination or mirror at path. in are
// the ports the request may arrive on, used when the destination leaves its
// port to "the port the request came in on".
func (c *checker) checkDestPort(rs routeSet, path, service, external string, port int, in []int) {
	var ports []model.Port
	var what string
	switch {
	case service != "" && external != "":
		return // GM0107 already
	case external != "":
		e := c.external(external)
		if e == nil {
			return
		}
		ports, what = e.Ports, fmt.Sprintf("external service %q", external)
	case service == "" && rs.gateway != nil:
		return // GM0107 or GM0101 already
	default:
		if service == "" || service == rs.name && rs.service != nil {
			return // the owner's own port: the request's port exists by construction
		}
		s := c.service(service)
		if s == nil {
			return
		}
		ports, what = s.Ports, fmt.Sprintf("service %q", service)
	}
	has := func(n int) bool {
		for _, p := range ports {
			if p.Number == n {
				return true
			}
		}
		return false
	}
	if port != 0 {
		if !has(port) {
			c.report(CodePort, path+".port", "%s has no port %d", what, port)
		}
		return
	}
	if len(ports) == 1 {
		return
	}
	if len(ports) == 0 {
		c.report(CodePort, path, "%s has no ports", what)
		return
	}
	for _, p := range in {
		if !has(p) {
			c.report(CodePort, path, "%s has no port %d (the port the request came in on) and several ports, set port", what, p)
			return
		}
	}
}

func appendUnique(xs []int, x int) []int {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}
