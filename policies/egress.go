package policies

import (
	"fmt"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Egress gateway routes apply to the hosts of the external services routed
// through the gateway (their `via`), by model.Gateway.HTTPRouteApplies: the
// host and port rule render uses to put each route in an external host's
// virtual host (render/egress.go). render serves HTTP external ports with
// those routes and forwards tls, https and tcp external ports as streams
// (tcp_proxy), where no HTTP route can apply. So a route that reaches only
// stream ports, or names a host or port no such external has, would be
// accepted and never honoured; these are errors here instead:
//   - GM0202: every external host and port the route applies to is a
//     stream port, or no external routed through the gateway has the
//     route's port;
//   - GM0205: a route host is no host of an external routed through the
//     gateway (on the route's port, when it sets one). Route hosts match
//     external hosts exactly, as they match ingress listener hosts.
//
// A gateway no external is routed through has nothing to say here: its
// routes' destinations are GM0206 already.

// egressHost is one host and port an egress gateway serves for an external.
type egressHost struct {
	host     string
	port     int
	protocol model.Protocol
}

// egressHosts lists the hosts and ports of the externals whose via is
// gateway, in external name order.
func (c *checker) egressHosts(gateway string) []egressHost {
	var out []egressHost
	for _, name := range c.ix.externals {
		e := c.external(name)
		if e == nil || e.Via != gateway {
			continue
		}
		for _, p := range e.Ports {
			for _, h := range e.Hosts {
				out = append(out, egressHost{host: h, port: p.Number, protocol: p.Protocol})
			}
		}
	}
	return out
}

// egressReach counts the served hosts route r applies to (only host, when
// host is not ""): on HTTP ports and on stream ports, with the first stream
// one for messages.
func egressReach(g *model.Gateway, hs []egressHost, r model.Route, host string) (http int, stream []egressHost) {
	for _, eh := range hs {
		if host != "" && eh.host != host || !g.HTTPRouteApplies(r, eh.port, eh.host) {
			continue
		}
		if eh.protocol.IsHTTP() {
			http++
		} else {
			stream = append(stream, eh)
		}
	}
	return http, stream
}

// checkEgressRoute judges route r (at rp) of egress gateway g by the rule
// above. Hosts no listener of g serves are GM0205 already and skipped, as is
// a route whose port has no HTTP listener (GM0202 already).
func checkEgressRoute(c *checker, g *model.Gateway, name, rp string, r model.Route) {
	hs := c.egressHosts(name)
	if len(hs) == 0 || r.Port != 0 && !hasRoutableListener(g, r.Port) {
		return
	}
	onPort := ""
	if r.Port != 0 {
		onPort = fmt.Sprintf(" on port %d", r.Port)
	}
	if len(r.Hosts) == 0 {
		http, stream := egressReach(g, hs, r, "")
		at := rp
		if r.Port != 0 {
			at = rp + ".port"
		}
		switch {
		case http > 0:
		case len(stream) > 0:
			c.report(CodePort, at, "external host %q%s is %q: egress gateway %q forwards it as a stream (tcp_proxy), so this HTTP route never applies",
				stream[0].host, onPort, stream[0].protocol, name)
		default:
			c.report(CodePort, at, "no external service routed through egress gateway %q has port %d, so the route never applies", name, r.Port)
		}
		return
	}
	for k, h := range r.Hosts {
		if !gatewayServes(g, r.Port, h) {
			continue // GM0205 for the listener already
		}
		http, stream := egressReach(g, hs, r, h)
		switch {
		case http > 0:
		case len(stream) > 0:
			c.report(CodePort, model.Index(rp+".hosts", k), "external host %q on port %d is %q: egress gateway %q forwards it as a stream (tcp_proxy), so this HTTP route never applies to it",
				h, stream[0].port, stream[0].protocol, name)
		default:
			c.report(CodeGatewayHost, model.Index(rp+".hosts", k), "host %q is not a host of any external service routed through egress gateway %q%s, so the route never applies to it",
				h, name, onPort)
		}
	}
}
