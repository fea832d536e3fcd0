package render

import (
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Transparent capture, in Istio's shape (NAMES.md, "Sidecar traffic
// capture"): `gitmesh capture` redirects a pod's outbound TCP to
// virtualOutbound (15001) and its inbound TCP to virtualInbound (15006).
// virtualOutbound hands each connection to the listener of its original
// destination (use_original_dst); those per-destination listeners do not
// bind. virtualInbound matches the original destination port with one
// filter chain per service port. So the application's ports are never
// bound by the sidecar, and the only bound listeners are 15001, 15006,
// 15021 (health) and 15090 (stats).

// listenerOriginalDst restores the pre-redirect destination of a captured
// connection, so filter chains can match on it.
const listenerOriginalDst = "envoy.filters.listener.original_dst"

// unbound marks a listener Envoy must not bind: it only receives the
// connections virtualOutbound hands over.
func unbound() *wrapperspb.BoolValue { return wrapperspb.Bool(false) }

// virtualOutbound is the outbound capture listener, one per mesh (it
// depends only on mesh.outboundTrafficPolicy). A connection whose original
// destination has a listener (exact VIP:PORT first, then 0.0.0.0:PORT) goes
// there; every other one takes the default chain: PassthroughCluster for
// ALLOW_ANY, BlackHoleCluster for REGISTRY_ONLY. A connection made to 15001
// itself would loop forever through the passthrough, so, as in Istio, a
// chain for destination port 15001 black-holes it.
func (b *builder) virtualOutbound() *Resource {
	if b.fixed.virtualOutbound == nil {
		b.fixed.virtualOutbound = b.buildVirtualOutbound()
	}
	return b.fixed.virtualOutbound
}

func (b *builder) buildVirtualOutbound() *Resource {
	policy := b.m.Mesh.OutboundTrafficPolicy
	return b.intern(resource.ListenerType, VirtualOutbound, "sidecar|"+VirtualOutbound+"|"+policy, model.Path("mesh", "outboundTrafficPolicy"), func() (proto.Message, []*Resource) {
		path := model.Path("mesh", "outboundTrafficPolicy")
		def := b.blackHoleCluster()
		if policy == "ALLOW_ANY" {
			def = b.passthroughCluster()
		}
		hole := b.blackHoleCluster()
		return &listenerv3.Listener{
			Name:             VirtualOutbound,
			Address:          socketAddr("0.0.0.0", proxyports.Outbound),
			UseOriginalDst:   wrapperspb.Bool(true),
			TrafficDirection: corev3.TrafficDirection_OUTBOUND,
			FilterChains: []*listenerv3.FilterChain{{
				Name:             VirtualOutbound + "-blackhole",
				FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(proxyports.Outbound)},
				Filters:          []*listenerv3.Filter{b.tcpProxyFilter(path, hole.Name, []string{hole.Name}, nil)},
			}},
			DefaultFilterChain: &listenerv3.FilterChain{
				Name:    VirtualOutbound + "-catchall-tcp",
				Filters: []*listenerv3.Filter{b.tcpProxyFilter(path, def.Name, []string{def.Name}, nil)},
			},
		}, []*Resource{def, hole}
	})
}

// passthroughCluster dials a connection's original destination (ALLOW_ANY).
func (b *builder) passthroughCluster() *Resource {
	return b.originalDstCluster(PassthroughCluster)
}

// inboundPassthroughCluster dials an inbound connection's original
// destination: the application on a port no service port names.
func (b *builder) inboundPassthroughCluster() *Resource {
	return b.originalDstCluster(InboundPassthroughCluster)
}

// originalDstCluster is an ORIGINAL_DST cluster: Envoy creates a host per
// original destination address, so lb_policy must be CLUSTER_PROVIDED (v3
// has no ORIGINAL_DST_LB; envoy/config/cluster/v3/cluster.proto).
func (b *builder) originalDstCluster(name string) *Resource {
	return b.intern(resource.ClusterType, name, name, "", func() (proto.Message, []*Resource) {
		return &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
			LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
			ConnectTimeout:       dur(defaultConnectTimeout),
		}, nil
	})
}

// blackHoleCluster has no endpoints: tcp_proxy to it closes the connection
// (REGISTRY_ONLY), as Istio's BlackHoleCluster does.
func (b *builder) blackHoleCluster() *Resource {
	return b.intern(resource.ClusterType, BlackHoleCluster, BlackHoleCluster, "", func() (proto.Message, []*Resource) {
		return &clusterv3.Cluster{
			Name:                 BlackHoleCluster,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
			ConnectTimeout:       dur(defaultConnectTimeout),
		}, nil
	})
}

// inboundPort is one service port's filters on the inbound side: what
// each of its filter chains in virtualInbound carries.
type inboundPort struct {
	port    *model.Port
	filters []*listenerv3.Filter
}

// virtualInbound is a sidecar's inbound capture listener: per service port
// a filter chain matched by the original destination port (the target
// port, where the application listens) carrying the port's RBAC and HCM or
// tcp_proxy to inbound|PORT||, with the service's mTLS mode as today's
// per-port listeners had it (PERMISSIVE: a tls and a raw_buffer chain). A
// port no service port names passes through to the application under the
// same mTLS mode and the service's port-independent authorization, as
// Istio's InboundPassthroughCluster does: STRICT still admits only mesh
// peers, and an app's undeclared port (a metrics endpoint) keeps working.
func (b *builder) virtualInbound(s *model.Service) *Resource {
	key := "sidecar|" + s.Name + "|" + VirtualInbound
	path := b.svcPath(s.Name, "ports")
	// The listener reads the service, the mesh block, other services'
	// identities (authorization sources) and the extensions (inboundFP).
	return b.internCached(resource.ListenerType, VirtualInbound, key, b.inboundFP(s), path, func() (proto.Message, []*Resource) {
		mode := b.ix.mtls(s)
		l := &listenerv3.Listener{
			Name:             VirtualInbound,
			Address:          socketAddr("0.0.0.0", proxyports.Inbound),
			TrafficDirection: corev3.TrafficDirection_INBOUND,
			ListenerFilters:  []*listenerv3.ListenerFilter{b.originalDstFilter()},
		}
		if mode == model.MTLSPermissive {
			l.ListenerFilters = append(l.ListenerFilters, b.tlsInspector())
		}
		var deps []*Resource
		for i := range s.Ports {
			p := &s.Ports[i]
			filters, ds := b.inboundFilters(s, p)
			deps = append(deps, ds...)
			tp := wrapperspb.UInt32(uint32(p.Target()))
			l.FilterChains = append(l.FilterChains, b.inboundChains(inboundListener(p.Number), mode, tp, filters)...)
		}
		pass := b.inboundPassthroughCluster()
		deps = append(deps, pass)
		stat := InboundPassthroughCluster
		deny, allow := b.rbacRules(s, 0, true)
		filters := append(b.netRBACFilters(path, stat, deny, allow), b.tcpProxyFilter(path, stat, []string{pass.Name}, nil))
		chains := b.inboundChains(VirtualInbound+"|passthrough", mode, nil, filters)
		if len(chains) == 1 {
			// One chain matching everything: the default chain, so no other
			// chain's match can ever be shadowed by it.
			chains[0].FilterChainMatch = nil
			l.DefaultFilterChain = chains[0]
		} else {
			l.FilterChains = append(l.FilterChains, chains...)
		}
		return l, deps
	})
}

// inboundChains are the filter chains of one inbound destination under
// mode, named NAME|mtls and NAME|plaintext (the names the per-port
// listeners had, so status and drift read the same), matched by port
// (nil: any port) and, for PERMISSIVE, by transport protocol.
func (b *builder) inboundChains(name string, mode model.MTLSMode, port *wrapperspb.UInt32Value, filters []*listenerv3.Filter) []*listenerv3.FilterChain {
	match := func(transport string) *listenerv3.FilterChainMatch {
		return &listenerv3.FilterChainMatch{DestinationPort: port, TransportProtocol: transport}
	}
	switch mode {
	case model.MTLSDisable:
		return []*listenerv3.FilterChain{{Name: name + "|plaintext", FilterChainMatch: match(""), Filters: filters}}
	case model.MTLSPermissive:
		return []*listenerv3.FilterChain{
			{Name: name + "|mtls", FilterChainMatch: match("tls"), Filters: filters, TransportSocket: b.meshDownstreamTLS(true)},
			{Name: name + "|plaintext", FilterChainMatch: match("raw_buffer"), Filters: filters},
		}
	default:
		return []*listenerv3.FilterChain{{Name: name + "|mtls", FilterChainMatch: match(""), Filters: filters, TransportSocket: b.meshDownstreamTLS(true)}}
	}
}

// healthListener answers the kubelet's readiness probe (httpGet
// 15021 /healthz/ready, as for Istio sidecars) from Envoy's admin /ready,
// which returns 200 once the server is initialised (its first xDS
// configuration applied); any other path is 404 (no route). It is bound,
// and `gitmesh capture` never redirects it (proxyports.Reserved).
func (b *builder) healthListener() *Resource {
	return b.intern(resource.ListenerType, HealthListener, HealthListener, "", func() (proto.Message, []*Resource) {
		rc := &routev3.RouteConfiguration{
			Name: "health",
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    "health",
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Name:  "ready",
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: HealthPath}},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{
						ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: StatsCluster},
						PrefixRewrite:    "/ready",
					}},
				}},
			}},
		}
		h, deps := b.hcm(hcmSpec{statPrefix: "health", inline: rc})
		return &listenerv3.Listener{
			Name:         HealthListener,
			Address:      socketAddr("0.0.0.0", proxyports.Health),
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{b.hcmFilter("", h)}}},
		}, append(deps, b.statsCluster())
	})
}

// vipTCPListener is the outbound listener of one TCP service port on one
// of the service's VIPs, VIP_PORT: virtualOutbound hands it the
// connections whose original destination is exactly VIP:PORT, which is
// what tells two TCP services on one port apart.
func (b *builder) vipTCPListener(s *model.Service, vip string, port int) *Resource {
	name := vipListener(vip, port)
	path := b.svcPath(s.Name, "addresses")
	return b.intern(resource.ListenerType, name, "sidecar|"+s.Name+"|"+name, path, func() (proto.Message, []*Resource) {
		c := b.serviceCluster(flavourMesh, s, findPort(s.Ports, port), "")
		if c == nil {
			return nil, nil
		}
		stat := "outbound_" + strconv.Itoa(port)
		return &listenerv3.Listener{
			Name:       name,
			Address:    socketAddr(vip, port),
			BindToPort: unbound(),
			DefaultFilterChain: &listenerv3.FilterChain{
				Name:    c.Name,
				Filters: []*listenerv3.Filter{b.tcpProxyFilter(path, stat, []string{c.Name}, nil)},
			},
		}, []*Resource{c}
	})
}
