package render

import (
	"sort"
	"strconv"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Egress gateways (class egress/GATEWAY). Sidecars send traffic for an
// external service whose `via` names the gateway over mesh mTLS, with the
// SNI `outbound_.PORT_._.HOST` (Istio's form). The gateway has one listener
// per external port number; each external host is a filter chain matched by
// that SNI, which terminates the mesh mTLS and then
//   - for HTTP ports: routes by Host (route config `http.PORT`). Each
//     external host is one virtual host holding, in order, the gateway's
//     `routes` that apply to the host and port (model.Gateway.HTTPRouteApplies,
//     the rule ingress routes and policies use too), rendered by httpRoutes
//     like ingress routes, then a final `default` route to the external's
//     own cluster. Destinations `to: [{external: X}]` go to X's cluster for
//     this host when X has it, else X's first host; all dial directly,
//     originating TLS when the external asks for it;
//   - for tls/https/tcp ports: passes the application's own stream through
//     (tcp_proxy) to the external host. HTTP routes cannot apply there, and
//     policies reject a route that would only reach such ports (GM0202).
//
// Why the default route: an external's `via` already says its traffic
// leaves through this gateway, so a request no gateway route matches goes
// where it went before the routes existed, and adding a route (say, a
// timeout on one path) never black-holes the rest of the host's traffic.
// Istio differs: an egress Gateway without a matching VirtualService answers
// 404; here the routes refine the direct route, they do not replace it.
//
// The gateway's own `listeners` are not used for egress: the ports come from
// the external services routed through it.

// buildEgress assembles one egress gateway class.
func (b *builder) buildEgress(g *model.Gateway) {
	p := b.newProxy(nodeid.Gateway(KindEgress, g.Name), KindEgress)
	p.add(b.statsListener())
	byPort := map[int][]extPort{}
	var ports []int
	for _, n := range b.ix.externalNames {
		e := b.m.External[n]
		if e.Via != g.Name {
			continue
		}
		for i := range e.Ports {
			pt := &e.Ports[i]
			if _, ok := byPort[pt.Number]; !ok {
				ports = append(ports, pt.Number)
			}
			byPort[pt.Number] = append(byPort[pt.Number], extPort{e, pt})
		}
	}
	sort.Ints(ports)
	for _, port := range ports {
		p.add(b.egressPort(g, port, byPort[port])...)
	}
	p.finish()
}

// egressPort renders one port's listener and, for HTTP externals, its route
// config.
func (b *builder) egressPort(g *model.Gateway, port int, eps []extPort) []*Resource {
	name := outboundListener(port)
	rcName := gatewayRouteConfig(port)
	path := model.Path("gateways", g.Name)
	var out []*Resource
	hasHTTP := false
	for _, ep := range eps {
		hasHTTP = hasHTTP || ep.p.Protocol.IsHTTP()
	}
	if hasHTTP {
		out = append(out, b.intern(resource.RouteType, rcName, "egress|"+g.Name+"|"+rcName, path, func() (proto.Message, []*Resource) {
			rc := &routev3.RouteConfiguration{Name: rcName}
			var deps []*Resource
			for _, ep := range eps {
				if !ep.p.Protocol.IsHTTP() {
					continue
				}
				for _, h := range ep.e.Hosts {
					vh, ds := b.egressVHost(g, port, ep, h)
					deps = append(deps, ds...)
					if vh != nil {
						rc.VirtualHosts = append(rc.VirtualHosts, vh)
					}
				}
			}
			rc.VirtualHosts = dedupeDomains(rc.VirtualHosts)
			return rc, deps
		}))
	}
	out = append(out, b.intern(resource.ListenerType, name, "egress|"+g.Name+"|"+name, path, func() (proto.Message, []*Resource) {
		l := &listenerv3.Listener{
			Name:            name,
			Address:         socketAddr("0.0.0.0", port),
			ListenerFilters: []*listenerv3.ListenerFilter{b.tlsInspector()},
		}
		var deps []*Resource
		stat := "egress_" + strconv.Itoa(port)
		for _, ep := range eps {
			epath := model.Path("external", ep.e.Name)
			for _, h := range ep.e.Hosts {
				var f *listenerv3.Filter
				if ep.p.Protocol.IsHTTP() {
					hc, ds := b.hcm(hcmSpec{
						path:       epath,
						statPrefix: stat,
						rds:        rcName,
						chain:      chain{fault: usesFault(g.Routes), exts: b.ix.extByGateway[g.Name]},
						tracing:    true,
					})
					deps = append(deps, ds...)
					f = b.hcmFilter(epath, hc)
				} else {
					c := b.externalCluster(flavourDirect, ep.e, h, ep.p)
					if c == nil {
						continue
					}
					deps = append(deps, c)
					f = b.tcpProxyFilter(epath, stat, []string{c.Name}, nil)
				}
				l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
					Name:             egressSNI(port, h),
					FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{egressSNI(port, h)}},
					Filters:          []*listenerv3.Filter{f},
					TransportSocket:  b.meshDownstreamTLS(true),
				})
			}
		}
		return l, deps
	}))
	return out
}

// egressVHost is the virtual host of external host h on an HTTP port: the
// gateway routes that apply to h and port, then the default route to the
// external's own cluster (see the file comment for why it stays).
func (b *builder) egressVHost(g *model.Gateway, port int, ep extPort, h string) (*routev3.VirtualHost, []*Resource) {
	c := b.externalCluster(flavourDirect, ep.e, h, ep.p)
	if c == nil {
		return nil, nil
	}
	rc := routeCtx{fl: flavourDirect, port: port, base: model.Path("gateways", g.Name, "routes"), host: h}
	routes, deps := b.httpRoutes(rc, g.Routes, func(r *model.Route) bool { return g.HTTPRouteApplies(*r, port, h) })
	vh := externalVHost(h, port, c.Name)
	vh.Routes = append(routes, vh.Routes...)
	return vh, append(deps, c)
}
