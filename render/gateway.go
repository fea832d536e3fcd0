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

// Ingress gateways (class ingress/GATEWAY): one Envoy listener per port
// number (gateway listeners sharing a port become filter chains of one
// listener, told apart by SNI), an RDS route config `http.PORT` for the
// ports that speak HTTP, and mesh clusters over mTLS with the gateway's
// own identity — the same cluster resources sidecars use. PASSTHROUGH, tls
// and tcp listeners are routed by stream routes (a route whose port is the
// listener's): one filter chain per listener host, matched by SNI, ending
// in a tcp_proxy (policies/streams.go states the rule, render/NAMES.md
// shows the output).

// buildIngress assembles one ingress gateway class.
func (b *builder) buildIngress(g *model.Gateway) {
	p := b.newProxy(nodeid.Gateway(KindIngress, g.Name), KindIngress)
	p.add(b.statsListener())
	byPort := map[int][]int{}
	var ports []int
	for i, l := range g.Listeners {
		if _, ok := byPort[l.Port]; !ok {
			ports = append(ports, l.Port)
		}
		byPort[l.Port] = append(byPort[l.Port], i)
	}
	sort.Ints(ports)
	for _, port := range ports {
		p.add(b.ingressPort(g, port, byPort[port])...)
	}
	p.finish()
}

// terminatesHTTP reports whether a listener of ingress gateway g ends in
// an HCM: the negation of the model's stream listener rule.
func terminatesHTTP(g *model.Gateway, l *model.GatewayListener) bool {
	return !g.IsStreamListener(*l)
}

// ingressPort renders the listener of one port and, if it speaks HTTP, its
// route config.
func (b *builder) ingressPort(g *model.Gateway, port int, idx []int) []*Resource {
	base := model.Path("gateways", g.Name)
	rcName := gatewayRouteConfig(port)
	var hosts []string
	http := false
	for _, i := range idx {
		if l := &g.Listeners[i]; terminatesHTTP(g, l) {
			http = true
			hosts = appendUnique(hosts, l.Hosts...)
		}
	}
	var out []*Resource
	if http {
		out = append(out, b.gatewayRouteConfig(g, port, hosts, flavourMesh))
	}
	name := outboundListener(port)
	lst := b.intern(resource.ListenerType, name, "ingress|"+g.Name+"|"+name, model.Index(base+".listeners", idx[0]), func() (proto.Message, []*Resource) {
		l := &listenerv3.Listener{Name: name, Address: socketAddr("0.0.0.0", port)}
		var deps []*Resource
		sni := false
		for _, i := range idx {
			gl := &g.Listeners[i]
			lpath := model.Index(base+".listeners", i)
			var filters []*listenerv3.Filter
			if terminatesHTTP(g, gl) {
				h, ds := b.hcm(hcmSpec{
					path:       lpath,
					statPrefix: "gateway_" + strconv.Itoa(port),
					rds:        rcName,
					chain:      chain{fault: usesFault(g.Routes), exts: b.ix.extByGateway[g.Name]},
					tracing:    true,
				})
				deps = append(deps, ds...)
				filters = []*listenerv3.Filter{b.hcmFilter(lpath, h)}
			}
			tls := gl.TLS != nil || gl.Protocol == model.ProtocolTLS || gl.Protocol == model.ProtocolHTTPS
			chainHosts := orStar(gl.Hosts)
			if !tls && terminatesHTTP(g, gl) && len(chainHosts) > 1 {
				// Plain HTTP: nothing below HTTP tells hosts apart, the
				// route config does (by Host). One chain per host would be
				// chains with identical matches, which Envoy refuses
				// (envoystrict rule_filter_chain_match.go).
				chainHosts = []string{"*"}
			}
			for _, host := range chainHosts {
				fc := &listenerv3.FilterChain{Name: gl.Name + "|" + host, Filters: filters}
				if host != "*" && tls {
					fc.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: []string{host}}
					sni = true
				}
				if !terminatesHTTP(g, gl) {
					f, ds := b.gatewayTCP(g, port, host)
					if f == nil {
						// No route forwards the host: policies report it
						// (GM0210); without a chain Envoy closes such
						// connections.
						continue
					}
					deps = append(deps, ds...)
					fc.Filters = []*listenerv3.Filter{f}
				}
				if gl.TLS != nil && gl.TLS.Mode != model.TLSPassthrough {
					// SIMPLE or MUTUAL: terminate, then route HTTP or, on
					// a tls listener, forward the decrypted stream.
					fc.TransportSocket = b.gatewayDownstreamTLS(lpath+".tls", gl.TLS)
				}
				l.FilterChains = append(l.FilterChains, fc)
			}
		}
		if sni {
			l.ListenerFilters = []*listenerv3.ListenerFilter{b.tlsInspector()}
		}
		return l, deps
	})
	return append(out, lst)
}

// gatewayRouteConfig renders `http.PORT`: one virtual host per listener host,
// with the gateway routes that name the host (or no host) and the port (or
// no port): model.Gateway.HTTPRouteApplies, which egress.go uses too. fl
// is the flavour of the mesh clusters the routes use.
func (b *builder) gatewayRouteConfig(g *model.Gateway, port int, hosts []string, fl flavour) *Resource {
	name := gatewayRouteConfig(port)
	base := model.Path("gateways", g.Name, "routes")
	return b.intern(resource.RouteType, name, string(fl)+"|"+g.Name+"|"+name, base, func() (proto.Message, []*Resource) {
		rc := &routev3.RouteConfiguration{Name: name}
		var deps []*Resource
		for _, host := range orStar(hosts) {
			// Stream routes forward connections of PASSTHROUGH hosts
			// sharing the port; they are no HTTP routes.
			applies := func(r *model.Route) bool { return g.HTTPRouteApplies(*r, port, host) }
			routes, ds := b.httpRoutes(routeCtx{fl: fl, port: port, base: base}, g.Routes, applies)
			deps = append(deps, ds...)
			domains := []string{"*"}
			if host != "*" {
				domains = []string{host, hostPort(host, port)}
			}
			rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: host, Domains: domains, Routes: routes})
		}
		rc.VirtualHosts = dedupeDomains(rc.VirtualHosts)
		return rc, deps
	})
}

// gatewayTCP forwards a PASSTHROUGH, tls or tcp listener host to its stream
// route (model.Gateway.StreamRouteFor; policies/streams.go has the whole
// rule): the first route whose port is the listener's port and whose hosts
// list the host or are empty. Routes without port are HTTP routes and never
// forward a stream. Weighted destinations spread connections. With no such
// route it returns nil, and the host gets no filter chain; policies report
// that (GM0210) before render runs.
func (b *builder) gatewayTCP(g *model.Gateway, port int, host string) (*listenerv3.Filter, []*Resource) {
	base := model.Path("gateways", g.Name, "routes")
	i := g.StreamRouteFor(port, host)
	if i < 0 {
		return nil, nil
	}
	r := &g.Routes[i]
	rc := routeCtx{fl: flavourMesh, port: port, base: base}
	var names []string
	var weights []int
	var deps []*Resource
	for j, d := range r.To {
		n, dep := b.destCluster(rc, d.Service, d.External, d.Version, d.Port, model.Index(model.Index(base, i)+".to", j))
		if n == "" {
			continue
		}
		names = append(names, n)
		weights = append(weights, d.Weight)
		deps = append(deps, dep)
	}
	if len(names) == 0 {
		return nil, deps
	}
	return b.tcpProxyFilter(model.Index(base, i), "gateway_"+strconv.Itoa(port), names, weights), deps
}

// orStar treats an empty host list as every host.
func orStar(hosts []string) []string {
	if len(hosts) == 0 {
		return []string{"*"}
	}
	return hosts
}

func appendUnique(list []string, add ...string) []string {
	for _, s := range add {
		if !contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}
