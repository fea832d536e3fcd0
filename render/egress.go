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
//   - for HTTP ports: routes by Host (route config `http.PORT`) to the
//     external cluster, originating TLS when the external asks for it;
//   - for tls/https ports: passes the application's own TLS stream through
//     (tcp_proxy) to the external host.
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
					c := b.externalCluster(flavourDirect, ep.e, h, ep.p)
					if c == nil {
						continue
					}
					deps = append(deps, c)
					rc.VirtualHosts = append(rc.VirtualHosts, externalVHost(h, port, c.Name))
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
						chain:      chain{exts: b.ix.extByGateway[g.Name]},
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
					TransportSocket:  b.meshDownstreamTLS(epath, true),
				})
			}
		}
		return l, deps
	}))
	return out
}
