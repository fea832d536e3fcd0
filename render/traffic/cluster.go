package traffic

import (
	"fmt"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/render"
)

// cluster sends the request to a cluster's endpoints, each taking its
// share by load-balancing weight, and on to whatever answers there.
func (e *evaluator) cluster(h at, name string, c conn) error {
	cl := h.cfg.Clusters[name]
	if cl == nil {
		// The router answers 503 for an unknown cluster (router.cc,
		// "cluster not found", response flag NC).
		e.status(h, 503, "cluster", name, "not in the config: 503", "")
		return nil
	}
	if h.dest != "" {
		// On the destination's own proxy every cluster leads to the local
		// application (inbound|PORT||, InboundPassthroughCluster).
		e.hop(h, "cluster", name, "the local application", "")
		e.reached(h, h.dest, true)
		return nil
	}
	up, err := upstreamTLS(cl)
	if err != nil {
		return fmt.Errorf("cluster %q: %w", name, err)
	}
	detail := strings.ToLower(cl.GetType().String())
	if up.on {
		if up.mutual {
			detail += ", mutual TLS"
		} else {
			detail += ", TLS"
		}
		if up.sni != "" {
			detail += " sni " + up.sni
		}
	}
	e.hop(h, "cluster", name, detail, e.origins.cluster(name))
	if name == render.BlackHoleCluster {
		// What REGISTRY_ONLY refuses: nothing routes the request.
		e.noRoute(h, "cluster", name, "the connection is closed")
		return nil
	}
	eps := e.endpoints(h, cl, c)
	hint := e.origins.clusterDest(name)
	if len(eps) == 0 {
		if d := hint; d != "" && cl.GetType() == clusterv3.Cluster_EDS {
			// A mesh service's endpoints may come from discovery at run
			// time (validate and check render Git's only): the verdict
			// must not depend on them, so the destination is the one
			// the cluster is named after, its own side not evaluated.
			e.hop(h, "endpoints", name, "none in the config (discovered at run time): the destination's side is not evaluated", "")
			e.reached(h, d, false)
			return nil
		}
		e.status(h, 503, "endpoints", name, "no endpoints: 503 (no healthy upstream)", "")
		return nil
	}
	total := 0
	for _, ep := range eps {
		total += ep.weight
	}
	// Endpoints share a cluster's requests by load-balancing weight
	// (endpoint_components.proto load_balancing_weight); the endpoints of
	// one workload (a version's replicas) are one step, through the first.
	type group struct {
		addr  string
		port  int
		share float64
	}
	var groups []*group
	byKey := map[string]*group{}
	var addrs []string
	for _, ep := range eps {
		addrs = append(addrs, ep.addr+":"+strconv.Itoa(ep.port))
		k := e.w.workload(ep.addr, ep.port, hint)
		g := byKey[k]
		if g == nil {
			g = &group{addr: ep.addr, port: ep.port}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.share += h.share * float64(ep.weight) / float64(total)
	}
	e.hop(h, "endpoints", name, strings.Join(addrs, " "), "")
	for _, g := range groups {
		b := h
		b.share = g.share
		if len(groups) > 1 {
			b.depth++
		}
		if err := e.upstream(b, g.addr, g.port, up, hint); err != nil {
			return err
		}
	}
	return nil
}

type endpoint struct {
	addr   string
	port   int
	weight int
}

// endpoints lists a cluster's endpoints: its EDS assignment (by
// eds_cluster_config.service_name, else the cluster's name), its inline
// load_assignment, or for ORIGINAL_DST the connection's own destination.
func (e *evaluator) endpoints(h at, cl *clusterv3.Cluster, c conn) []endpoint {
	var cla *endpointv3.ClusterLoadAssignment
	switch cl.GetType() {
	case clusterv3.Cluster_ORIGINAL_DST:
		return []endpoint{{addr: c.dstIP, port: c.dstPort, weight: 1}}
	case clusterv3.Cluster_EDS:
		n := cl.GetEdsClusterConfig().GetServiceName()
		if n == "" {
			n = cl.GetName()
		}
		cla = h.cfg.Endpoints[n]
	default:
		cla = cl.GetLoadAssignment()
	}
	var out []endpoint
	for _, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			w := 1
			if lb.GetLoadBalancingWeight() != nil {
				w = int(lb.GetLoadBalancingWeight().GetValue())
			}
			a, p := socketAddr(lb.GetEndpoint().GetAddress())
			out = append(out, endpoint{addr: a, port: p, weight: w})
		}
	}
	return out
}

// tlsUp is a cluster's upstream TLS.
type tlsUp struct {
	on, mutual bool
	sni        string
	alpn       []string
}

func upstreamTLS(cl *clusterv3.Cluster) (tlsUp, error) {
	ts := cl.GetTransportSocket()
	if ts == nil {
		return tlsUp{}, nil
	}
	var u tlsv3.UpstreamTlsContext
	if err := anypb.UnmarshalTo(ts.GetTypedConfig(), &u, proto.UnmarshalOptions{}); err != nil {
		return tlsUp{}, fmt.Errorf("transport socket: %w", err)
	}
	ctx := u.GetCommonTlsContext()
	return tlsUp{
		on:     true,
		mutual: len(ctx.GetTlsCertificateSdsSecretConfigs()) > 0 || len(ctx.GetTlsCertificates()) > 0 || ctx.GetTlsCertificateProviderInstance() != nil,
		sni:    u.GetSni(),
		alpn:   ctx.GetAlpnProtocols(),
	}, nil
}

// upstream is the connection from h's proxy to addr:port: the workload
// there (its sidecar's virtualInbound, a proxyless server listener, a
// gateway's listener) or something outside the mesh.
func (e *evaluator) upstream(h at, addr string, port int, up tlsUp, hint string) error {
	c := conn{dstIP: addr, dstPort: port, transport: "raw_buffer"}
	if up.on {
		c.transport, c.sni, c.alpn = "tls", up.sni, up.alpn
	}
	peer := ""
	if up.mutual {
		peer = h.identity
	}
	for _, o := range e.w.ownersOf(addr, port, hint) {
		if o.class == "" {
			e.reached(h, o.dest, false)
			return nil
		}
		cfg := e.cfgs(o.class)
		if cfg == nil {
			return fmt.Errorf("endpoint %s:%d belongs to class %q, which is not in the rendered config", addr, port, o.class)
		}
		next := at{class: o.class, cfg: cfg, identity: e.w.Identity(o.class), peer: peer, share: h.share, live: h.live, depth: h.depth, hops: h.hops + 1}
		cl, _ := nodeid.ParseClass(o.class)
		var lport int
		switch cl.Kind {
		case nodeid.KindSidecar:
			// Capture redirects inbound TCP to virtualInbound (15006);
			// its original_dst listener filter restores the port.
			next.dest, lport = o.dest, proxyports.Inbound
			e.routed(h, o.dest)
		case nodeid.KindProxyless:
			next.dest, lport = o.dest, port
			e.routed(h, o.dest)
		default:
			lport = port
		}
		l := listenerOnPort(cfg, lport)
		if l == nil && cl.Kind == nodeid.KindProxyless {
			// A proxyless workload's server side is xDS only if the
			// application serves with grpc-go's xds.NewGRPCServer, which
			// asks for the listener of its own address; without one for
			// this port a plain gRPC server answers, enforcing nothing.
			e.hop(next, "listener", "", fmt.Sprintf("no xDS server listener for port %d: a plain gRPC server answers (no server-side policy)", lport), "")
			e.reached(next, o.dest, true)
			return nil
		}
		if l == nil {
			e.noRoute(next, "listener", "", fmt.Sprintf("no listener on port %d", lport))
			return nil
		}
		return e.listener(next, l, c, fmt.Sprintf("connection to %s:%d", addr, port))
	}
	if x := e.w.external(addr); x != "" {
		e.reached(h, x, false)
		return nil
	}
	if addr == unknownAddr {
		// The original destination of a passthrough: the host the
		// application named.
		if x := e.w.external(e.req.Host); x != "" {
			e.reached(h, x, false)
		} else {
			e.reached(h, e.req.Host, false)
		}
		return nil
	}
	e.reached(h, addr+":"+strconv.Itoa(port), false)
	return nil
}
