package render

import (
	"sort"
	"strconv"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Sidecars (class sidecar/NS/SVC/VERSION). Every version of a service gets
// the same inbound and outbound config; the resources are built once per
// service and shared by pointer between its versions' classes.

// buildSidecar assembles the sidecar classes of a service's versions.
func (b *builder) buildSidecar(s *model.Service, versions []string) {
	if len(versions) == 0 {
		return
	}
	var aliases []string
	for _, v := range versions[1:] {
		aliases = append(aliases, nodeid.Sidecar(s.Namespace, s.Name, v))
	}
	p := b.newProxy(nodeid.Sidecar(s.Namespace, s.Name, versions[0]), KindSidecar)
	p.add(b.statsListener(), b.healthListener(), b.virtualInbound(s))
	p.shared = b.outboundLayer(s, p.class)
	p.finish(aliases...)
}

// outboundLayer is sidecarOutbound as a layer: sorted, deduplicated and
// closed over dependencies once per namespace and dependency set, however
// many sidecars share it. class names the first of them in findings.
func (b *builder) outboundLayer(s *model.Service, class string) *Layer {
	key := b.ix.outboundKey(s)
	if l, ok := b.layers[key]; ok {
		return l
	}
	rs := b.sidecarOutbound(s)
	l, flat := b.layerCached(key, rs)
	if l == nil {
		l = b.newLayer(class, rs)
	}
	b.noteLayer(key, flat, l)
	b.layers[key] = l
	return l
}

// inboundFilters are one service port's filters on the inbound side:
// RBAC and the HTTP connection manager (with an inline route config
// inbound|PORT), or RBAC and tcp_proxy, to the local application
// inbound|PORT||. virtualInbound carries them in the port's filter chains.
func (b *builder) inboundFilters(s *model.Service, port *model.Port) ([]*listenerv3.Filter, []*Resource) {
	name := inboundListener(port.Number)
	path := b.svcPath(s.Name, "ports")
	app := b.inboundAppCluster(s, port)
	deps := []*Resource{app}
	stat := "inbound_" + strconv.Itoa(port.Number)
	http := port.Protocol.IsHTTP()
	deny, allow := b.rbacRules(s, port.Number, !http)
	if !http {
		return append(b.netRBACFilters(path, stat, deny, allow),
			b.tcpProxyFilter(path, stat, []string{app.Name}, nil)), deps
	}
	rc := &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "inbound|http|" + strconv.Itoa(port.Number),
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Name:  "default",
				Match: catchAll(),
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: app.Name},
					Timeout:          dur(0),
				}},
			}},
		}},
	}
	h, ds := b.hcm(hcmSpec{
		path:       path,
		statPrefix: stat,
		inline:     rc,
		chain:      b.inboundChain(s, deny, allow),
		tracing:    true,
	})
	return []*listenerv3.Filter{b.hcmFilter(path, h)}, append(deps, ds...)
}

// inboundChain is the HTTP filter chain of a service's inbound side: its
// extensions and its authorization.
func (b *builder) inboundChain(s *model.Service, deny, allow *rbacv3.RBAC) chain {
	c := chain{exts: b.ix.extByService[s.Name]}
	if deny != nil {
		c.deny = httpRBAC(deny)
	}
	if allow != nil {
		c.allow = httpRBAC(allow)
	}
	return c
}

// outboundTargets is what a sidecar can reach, grouped by port number.
type outboundTargets struct {
	http    map[int][]*model.Service
	httpExt map[int][]extPort
	tcp     map[int][]*model.Service
	sniExt  map[int][]extPort
	tcpExt  map[int][]extPort
	ports   []int
}

// extPort is one port of an external service.
type extPort struct {
	e *model.External
	p *model.Port
}

// sidecarOutbound renders everything a service's sidecars need to call their
// dependencies: per port number an HTTP listener with an RDS route config
// (one virtual host per service, told apart by Host) or a TCP listener, and
// the clusters and assignments behind them. What a sidecar sees outbound
// depends only on its namespace (short host names) and its dependency set,
// so it is memoised by those: in a mesh without dependsOn every sidecar
// shares one set, built once.
func (b *builder) sidecarOutbound(s *model.Service) []*Resource {
	d := b.ix.depsOf(s)
	memo := b.ix.outboundKey(s)
	if rs, ok := b.outbound[memo]; ok {
		return rs
	}
	t := groupTargets(d)
	var out []*Resource
	for _, dep := range d.services {
		for i := range dep.Ports {
			p := &dep.Ports[i]
			out = append(out, b.serviceCluster(flavourMesh, dep, p, ""))
			for _, v := range b.ix.versionNames(dep) {
				out = append(out, b.serviceCluster(flavourMesh, dep, p, v))
			}
		}
	}
	for _, e := range d.externals {
		for i := range e.Ports {
			for _, h := range e.Hosts {
				out = append(out, b.externalCluster(flavourVia, e, h, &e.Ports[i]))
			}
		}
	}
	for _, port := range t.ports {
		if len(t.http[port]) > 0 || len(t.httpExt[port]) > 0 {
			out = append(out, b.outboundHTTP(s, port, t.http[port], t.httpExt[port])...)
		} else {
			out = append(out, b.outboundTCP(s, port, t))
		}
		// TCP services with VIPs are told apart by VIP, even on a port an
		// HTTP service's wildcard listener holds.
		for _, dep := range t.tcp[port] {
			for _, vip := range b.ix.addresses(dep) {
				out = append(out, b.vipTCPListener(dep, vip, port))
			}
		}
	}
	out = append(out, b.virtualOutbound())
	b.outbound[memo] = out
	return out
}

// outboundKey names a sidecar's outbound view: namespace and dependency set.
func outboundKey(s *model.Service, d *deps) string {
	return s.Namespace + "|" + d.key
}

// groupTargets sorts dependencies by port number and protocol. HTTP takes a
// port number's wildcard listener before TCP: Host tells HTTP services
// apart, while TCP services are told apart by their VIP_PORT listeners
// (only a TCP service without a VIP needs the wildcard).
func groupTargets(d *deps) *outboundTargets {
	t := &outboundTargets{
		http: map[int][]*model.Service{}, httpExt: map[int][]extPort{},
		tcp: map[int][]*model.Service{}, sniExt: map[int][]extPort{}, tcpExt: map[int][]extPort{},
	}
	seen := map[int]bool{}
	note := func(n int) {
		if !seen[n] {
			seen[n] = true
			t.ports = append(t.ports, n)
		}
	}
	for _, s := range d.services {
		for i := range s.Ports {
			p := &s.Ports[i]
			note(p.Number)
			if p.Protocol.IsHTTP() {
				t.http[p.Number] = append(t.http[p.Number], s)
			} else {
				t.tcp[p.Number] = append(t.tcp[p.Number], s)
			}
		}
	}
	for _, e := range d.externals {
		for i := range e.Ports {
			p := &e.Ports[i]
			note(p.Number)
			switch {
			case p.Protocol.IsHTTP():
				t.httpExt[p.Number] = append(t.httpExt[p.Number], extPort{e, p})
			case p.Protocol == model.ProtocolTLS || p.Protocol == model.ProtocolHTTPS:
				t.sniExt[p.Number] = append(t.sniExt[p.Number], extPort{e, p})
			default:
				t.tcpExt[p.Number] = append(t.tcpExt[p.Number], extPort{e, p})
			}
		}
	}
	sort.Ints(t.ports)
	return t
}

// outboundHTTP renders the RDS route config and the listener of one port.
func (b *builder) outboundHTTP(s *model.Service, port int, svcs []*model.Service, exts []extPort) []*Resource {
	path := b.svcPath(s.Name, "dependsOn")
	name := outboundRouteConfig(port)
	fault := false
	// The route config is its virtual hosts (routeConfigFP) and, with
	// ALLOW_ANY, the mesh block's catch-all.
	rc := b.internCached(resource.RouteType, name, "sidecar|"+b.ix.outboundKey(s)+"|"+name, b.routeConfigFP(svcs, exts), path, func() (proto.Message, []*Resource) {
		var vhs []*routev3.VirtualHost
		var deps []*Resource
		for _, t := range svcs {
			vh := b.serviceVHost(flavourMesh, t, port, s.Namespace)
			vhs = append(vhs, vh.vh)
			deps = append(deps, vh.deps...)
		}
		for _, ep := range exts {
			for _, h := range ep.e.Hosts {
				c := b.externalCluster(flavourVia, ep.e, h, ep.p)
				if c == nil {
					continue
				}
				deps = append(deps, c)
				vhs = append(vhs, externalVHost(h, port, c.Name))
			}
		}
		if b.m.Mesh.OutboundTrafficPolicy == "ALLOW_ANY" {
			// As Istio's allow_any: a Host no service claims goes where
			// the client dialled, as unmatched TCP does.
			deps = append(deps, b.passthroughCluster())
			vhs = append(vhs, b.allowAnyVHost())
		}
		return &routev3.RouteConfiguration{Name: name, VirtualHosts: dedupeDomains(vhs)}, deps
	})
	for _, t := range svcs {
		fault = fault || b.serviceVHost(flavourMesh, t, port, s.Namespace).fault
	}
	return []*Resource{rc, b.outboundHTTPListener(port, fault)}
}

// allowAnyVHost sends a Host no service claims to PassthroughCluster. It
// is the same in every outbound route config of the mesh, so it is built
// once and shared by pointer (and validated and checked once).
func (b *builder) allowAnyVHost() *routev3.VirtualHost {
	if b.fixed.allowAny == nil {
		b.fixed.allowAny = &routev3.VirtualHost{
			Name:    allowAnyVHost,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Name:  allowAnyVHost,
				Match: catchAll(),
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: b.passthroughCluster().Name},
					Timeout:          dur(0),
				}},
			}},
		}
	}
	return b.fixed.allowAny
}

// outboundHTTPListener is shared by every sidecar: it only names the RDS
// config for its port. The fault filter is present only where some route
// of the port injects faults.
func (b *builder) outboundHTTPListener(port int, fault bool) *Resource {
	name := outboundListener(port)
	key := "sidecar|" + name + "|fault=" + strconv.FormatBool(fault)
	return b.intern(resource.ListenerType, name, key, "", func() (proto.Message, []*Resource) {
		h, deps := b.hcm(hcmSpec{
			statPrefix: "outbound_" + strconv.Itoa(port),
			rds:        outboundRouteConfig(port),
			chain:      chain{fault: fault},
			tracing:    true,
		})
		return &listenerv3.Listener{
			Name:         name,
			Address:      socketAddr("0.0.0.0", port),
			BindToPort:   unbound(),
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{b.hcmFilter("", h)}}},
		}, deps
	})
}

// outboundTCP renders a TCP port's wildcard listener 0.0.0.0_PORT: a
// filter chain per external TLS host (matched by SNI) and, as the default,
// the first TCP service without a VIP or else the first TCP external, by
// name. TCP services with VIPs have their own VIP_PORT listeners
// (vipTCPListener); nil when the port needs no wildcard listener.
func (b *builder) outboundTCP(s *model.Service, port int, t *outboundTargets) *Resource {
	name := outboundListener(port)
	path := b.svcPath(s.Name, "dependsOn")
	return b.intern(resource.ListenerType, name, "sidecar|"+b.ix.outboundKey(s)+"|"+name, path, func() (proto.Message, []*Resource) {
		l := &listenerv3.Listener{Name: name, Address: socketAddr("0.0.0.0", port), BindToPort: unbound()}
		stat := "outbound_" + strconv.Itoa(port)
		for _, ep := range t.sniExt[port] {
			for _, h := range ep.e.Hosts {
				c := b.externalCluster(flavourVia, ep.e, h, ep.p)
				if c == nil {
					continue
				}
				l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
					Name:             c.Name,
					FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{h}},
					Filters:          []*listenerv3.Filter{b.tcpProxyFilter(path, stat, []string{c.Name}, nil)},
				})
			}
		}
		if len(l.FilterChains) > 0 {
			l.ListenerFilters = []*listenerv3.ListenerFilter{b.tlsInspector()}
		}
		var def *Resource
		if svc := b.firstWithoutVIP(t.tcp[port]); svc != nil {
			def = b.serviceCluster(flavourMesh, svc, findPort(svc.Ports, port), "")
		} else if eps := t.tcpExt[port]; len(eps) > 0 && len(eps[0].e.Hosts) > 0 {
			def = b.externalCluster(flavourVia, eps[0].e, eps[0].e.Hosts[0], eps[0].p)
		}
		if def == nil && len(l.FilterChains) == 0 {
			// Every TCP service of the port has its VIP listeners and
			// nothing else is on the port: no wildcard listener.
			return nil, nil
		}
		if def != nil {
			l.DefaultFilterChain = &listenerv3.FilterChain{
				Name:    def.Name,
				Filters: []*listenerv3.Filter{b.tcpProxyFilter(path, stat, []string{def.Name}, nil)},
			}
		}
		return l, []*Resource{def}
	})
}

// firstWithoutVIP is the first of svcs (sorted by name) that has no VIP,
// or nil: only such a service needs the port's wildcard listener.
func (b *builder) firstWithoutVIP(svcs []*model.Service) *model.Service {
	for _, s := range svcs {
		if len(b.ix.addresses(s)) == 0 {
			return s
		}
	}
	return nil
}

// vhost is a rendered virtual host with the clusters its routes need.
type vhost struct {
	vh    *routev3.VirtualHost
	deps  []*Resource
	fault bool
}

// serviceVHost is the virtual host of one service on one port, as seen by
// callers in namespace callerNS. It is memoised: the same virtual host
// message is embedded in every caller's route config.
func (b *builder) serviceVHost(fl flavour, t *model.Service, port int, callerNS string) *vhost {
	key := vhostKey{fl, t, port, callerNS == t.Namespace}
	if v, ok := b.vhosts[key]; ok {
		return v
	}
	v := b.vhostCached(key, callerNS)
	b.vhosts[key] = v
	return v
}

// buildServiceVHost builds serviceVHost's virtual host.
func (b *builder) buildServiceVHost(fl flavour, t *model.Service, port int, callerNS string) *vhost {
	applies := func(r *model.Route) bool { return r.Port == 0 || r.Port == port }
	rc := routeCtx{fl: fl, self: t, port: port, base: b.svcPath(t.Name, "routes")}
	routes, deps := b.httpRoutes(rc, t.Routes, applies)
	v := &vhost{
		vh: &routev3.VirtualHost{
			Name:    hostPort(b.ix.host(t), port),
			Domains: b.serviceDomains(t, port, callerNS),
			Routes:  routes,
		},
		deps: deps,
	}
	for i := range t.Routes {
		if t.Routes[i].Fault != nil && applies(&t.Routes[i]) {
			v.fault = true
		}
	}
	return v
}

// vhostKey identifies a memoised virtual host without building a string:
// it is looked up once per caller, dependency and port.
type vhostKey struct {
	fl     flavour
	t      *model.Service
	port   int
	sameNS bool
}

// externalVHost routes every request for an external host to its cluster.
func externalVHost(host string, port int, cluster string) *routev3.VirtualHost {
	return &routev3.VirtualHost{
		Name:    hostPort(host, port),
		Domains: []string{host, hostPort(host, port)},
		Routes: []*routev3.Route{{
			Name:  "default",
			Match: catchAll(),
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
				Timeout:          dur(0),
			}},
		}},
	}
}
