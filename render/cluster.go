package render

import (
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Clusters and endpoint assignments. A cluster's content is a function of
// its name and its flavour (who dials it: an Envoy or grpc-go, directly or
// through an egress gateway), so clusters are memoised by flavour and name
// and shared by pointer across every proxy that calls the same target.

// flavour says who dials a cluster, which changes its TLS and options.
type flavour string

const (
	// flavourMesh: an Envoy (sidecar or gateway) dialling a mesh workload.
	flavourMesh flavour = "mesh"
	// flavourGRPC: a proxyless grpc-go client dialling a mesh workload.
	flavourGRPC flavour = "grpc"
	// flavourDirect: an Envoy dialling an external host itself.
	flavourDirect flavour = "direct"
	// flavourVia: a sidecar or ingress dialling an external host through
	// the external's egress gateway.
	flavourVia flavour = "via"
)

// defaultConnectTimeout is Istio's default; Envoy rejects 0.
const defaultConnectTimeout = 10 * model.Second

// serviceCluster returns the EDS cluster for one port and version ("" for
// all versions) of a mesh service, with its assignment as a dependency.
func (b *builder) serviceCluster(fl flavour, s *model.Service, p *model.Port, version string) *Resource {
	// Fast path on a struct key: this is called once per dependency per
	// caller, so it must not build strings when the cluster exists.
	ck := clusterKey{fl, s, p.Number, version}
	if r, ok := b.clusters[ck]; ok {
		return r
	}
	r := b.buildServiceCluster(fl, s, p, version)
	b.clusters[ck] = r
	return r
}

// clusterKey identifies a mesh service cluster without building its name.
type clusterKey struct {
	fl      flavour
	s       *model.Service
	port    int
	version string
}

func (b *builder) buildServiceCluster(fl flavour, s *model.Service, p *model.Port, version string) *Resource {
	host := b.ix.host(s)
	name := outboundCluster(p.Number, version, host)
	path := b.svcPath(s.Name, "")
	if version != "" {
		path = model.Path("services", s.Name, "versions", version)
	}
	// The cluster and its assignment read the service, its discovered
	// endpoints and the mesh block only (clusterFP).
	return b.internCached(resource.ClusterType, name, string(fl)+"|"+name, b.clusterFP(s), path, func() (proto.Message, []*Resource) {
		pol := s.TrafficPolicy
		if version != "" {
			pol = policyFor(s, version)
		}
		c := &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name},
			ConnectTimeout:       dur(defaultConnectTimeout),
		}
		b.applyPolicy(policyPath(s, version), c, pol, fl)
		if fl != flavourGRPC {
			b.httpOptions(path, c, p.Protocol, pol)
		}
		if b.ix.mtls(s) != model.MTLSDisable {
			if fl == flavourGRPC {
				c.TransportSocket = b.grpcUpstreamTLS(path, b.ix.spiffe(s))
			} else {
				c.TransportSocket = b.meshUpstreamTLS(path, meshSNI(p.Number, version, host), b.ix.spiffe(s))
			}
		}
		return c, []*Resource{b.assignment(s, p, version, name)}
	})
}

// assignment is the ClusterLoadAssignment of an EDS cluster: every
// endpoint of the version (or of all versions) at the port. One locality
// carries all endpoints and an explicit weight, which grpc-go requires.
func (b *builder) assignment(s *model.Service, p *model.Port, version, name string) *Resource {
	path := b.svcPath(s.Name, "versions")
	return b.intern(resource.EndpointType, name, name, path, func() (proto.Message, []*Resource) {
		versions := []string{version}
		if version == "" {
			versions = b.ix.versionNames(s)
		}
		var eps []model.Endpoint
		for _, v := range versions {
			eps = append(eps, endpointsOf(b.in, s, v)...)
		}
		return loadAssignment(name, eps, func(e model.Endpoint) int { return endpointPort(e, p) }), nil
	})
}

// lbEndpoint is the eight messages of one endpoint, allocated together.
type lbEndpoint struct {
	lb     endpointv3.LbEndpoint
	id     endpointv3.LbEndpoint_Endpoint
	end    endpointv3.Endpoint
	addr   corev3.Address
	sel    corev3.Address_SocketAddress
	sock   corev3.SocketAddress
	port   corev3.SocketAddress_PortValue
	weight wrapperspb.UInt32Value
}

// loadAssignment builds a one-locality assignment. Its endpoints' messages
// are allocated in one array (lbEndpoint) rather than one object per
// message: assignments hold most of a mesh's endpoints, and their small
// messages were a tenth of a render's allocations.
func loadAssignment(name string, eps []model.Endpoint, port func(model.Endpoint) int) *endpointv3.ClusterLoadAssignment {
	loc := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{}}
	total := 0
	if len(eps) > 0 {
		loc.LbEndpoints = make([]*endpointv3.LbEndpoint, len(eps))
	}
	block := make([]lbEndpoint, len(eps))
	for i, e := range eps {
		w := e.Weight
		if w <= 0 {
			w = 1
		}
		total += w
		x := &block[i]
		x.port.PortValue = uint32(port(e))
		x.sock.Address, x.sock.PortSpecifier = e.Address, &x.port
		x.sel.SocketAddress = &x.sock
		x.addr.Address = &x.sel
		x.end.Address = &x.addr
		x.id.Endpoint = &x.end
		x.weight.Value = uint32(w)
		x.lb.HostIdentifier, x.lb.LoadBalancingWeight = &x.id, &x.weight
		loc.LbEndpoints[i] = &x.lb
	}
	if total == 0 {
		total = 1
	}
	loc.LoadBalancingWeight = wrapperspb.UInt32(uint32(total))
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{loc}}
}

// policyPath is the model path of the traffic policy policyFor picks.
func policyPath(s *model.Service, version string) string {
	if v := s.Versions[version]; version != "" && v != nil && v.TrafficPolicy != nil {
		return model.Path("services", s.Name, "versions", version, "trafficPolicy")
	}
	return model.Path("services", s.Name, "trafficPolicy")
}

// applyPolicy sets load balancing, circuit breakers and outlier detection.
// grpc-go knows no RANDOM policy, so proxyless clients get round robin.
// path is the policy's model path.
func (b *builder) applyPolicy(path string, c *clusterv3.Cluster, pol *model.TrafficPolicy, fl flavour) {
	if pol == nil {
		return
	}
	switch pol.LoadBalancer {
	case "LEAST_REQUEST":
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case "RANDOM":
		if fl != flavourGRPC {
			c.LbPolicy = clusterv3.Cluster_RANDOM
		}
	case "RING_HASH":
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{}}
	}
	if cp := pol.ConnectionPool; cp != nil {
		if cp.ConnectTimeout > 0 {
			c.ConnectTimeout = dur(cp.ConnectTimeout)
		}
		t := &clusterv3.CircuitBreakers_Thresholds{
			MaxConnections:     b.u32(path+".connectionPool.maxConnections", cp.MaxConnections),
			MaxPendingRequests: b.u32(path+".connectionPool.maxPendingRequests", cp.MaxPendingRequests),
			MaxRequests:        b.u32(path+".connectionPool.maxRequests", cp.MaxRequests),
			MaxRetries:         b.u32(path+".connectionPool.maxRetries", cp.MaxRetries),
		}
		if t.MaxConnections != nil || t.MaxPendingRequests != nil || t.MaxRequests != nil || t.MaxRetries != nil {
			c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
		}
	}
	if od := pol.OutlierDetection; od != nil {
		o := &clusterv3.OutlierDetection{
			Consecutive_5Xx:           b.u32(path+".outlierDetection.consecutive5xxErrors", od.Consecutive5xxErrors),
			ConsecutiveGatewayFailure: b.u32(path+".outlierDetection.consecutiveGatewayErrors", od.ConsecutiveGatewayErrors),
			MaxEjectionPercent:        b.u32(path+".outlierDetection.maxEjectionPercent", od.MaxEjectionPercent),
		}
		if od.Interval > 0 {
			o.Interval = dur(od.Interval)
		}
		if od.BaseEjectionTime > 0 {
			o.BaseEjectionTime = dur(od.BaseEjectionTime)
		}
		c.OutlierDetection = o
	}
}

// httpOptions sets Envoy's upstream HTTP options: HTTP/2 for http2 and gRPC
// ports, and the per-connection limits of the connection pool.
func (b *builder) httpOptions(path string, c *clusterv3.Cluster, proto model.Protocol, pol *model.TrafficPolicy) {
	common := &corev3.HttpProtocolOptions{}
	set := false
	if pol != nil && pol.ConnectionPool != nil {
		if n := pol.ConnectionPool.MaxRequestsPerConnection; n > 0 {
			common.MaxRequestsPerConnection = b.u32(path+".trafficPolicy.connectionPool.maxRequestsPerConnection", n)
			set = true
		}
		if d := pol.ConnectionPool.IdleTimeout; d > 0 {
			common.IdleTimeout = dur(d)
			set = true
		}
	}
	h2 := proto == model.ProtocolHTTP2 || proto == model.ProtocolGRPC
	if !set && !h2 {
		return
	}
	if !set {
		// Only the protocol: the same options for every HTTP/2 cluster,
		// packed once (shared.go).
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": b.plainHTTPOptions(path, h2),
		}
		return
	}
	opts := &httpv3.HttpProtocolOptions{}
	if set {
		opts.CommonHttpProtocolOptions = common
	}
	setUpstreamProtocol(opts, h2)
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": b.pack(path, opts),
	}
}

// setUpstreamProtocol sets explicit HTTP/2 (h2) or the downstream's protocol.
func setUpstreamProtocol(opts *httpv3.HttpProtocolOptions, h2 bool) {
	if h2 {
		opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}}
	} else {
		opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{UseDownstreamProtocolConfig: &httpv3.HttpProtocolOptions_UseDownstreamHttpConfig{}}
	}
}

// plainHTTPOptions is the packed HttpProtocolOptions of a cluster with no
// connection pool limits: only the upstream protocol, by h2.
func (b *builder) plainHTTPOptions(path string, h2 bool) *anypb.Any {
	i := 0
	if h2 {
		i = 1
	}
	if b.fixed.upstreamHTTP[i] == nil {
		opts := &httpv3.HttpProtocolOptions{}
		setUpstreamProtocol(opts, h2)
		b.fixed.upstreamHTTP[i] = b.pack(path, opts)
	}
	return b.fixed.upstreamHTTP[i]
}

// externalCluster is the cluster for one host and port of an external
// service, as the given flavour dials it: directly (DNS or static
// addresses, with TLS origination when asked and the port is plain text) or
// via the external's egress gateway over mesh mTLS, with an SNI that tells
// the gateway the real host and port.
func (b *builder) externalCluster(fl flavour, e *model.External, host string, p *model.Port) *Resource {
	name := outboundCluster(p.Number, "", host)
	path := model.Path("external", e.Name)
	if fl == flavourVia && e.Via != "" {
		return b.intern(resource.ClusterType, name, string(fl)+"|"+name, path, func() (proto.Message, []*Resource) {
			g := b.m.Gateways[e.Via]
			if g == nil {
				b.errorf(CodeUnresolved, model.Path("external", e.Name, "via"), "unknown egress gateway %q", e.Via)
				return nil, nil
			}
			c := addrCluster(name, g.Endpoints, func(ep model.Endpoint) int {
				if n, ok := ep.Ports[p.Name]; ok && n > 0 {
					return n
				}
				return p.Number
			})
			c.TransportSocket = b.meshUpstreamTLS(path, egressSNI(p.Number, host), b.ix.gatewaySPIFFE(g))
			return c, nil
		})
	}
	return b.intern(resource.ClusterType, name, string(flavourDirect)+"|"+name, path, func() (proto.Message, []*Resource) {
		var c *clusterv3.Cluster
		if e.Resolution == "STATIC" {
			c = addrCluster(name, e.Endpoints, func(ep model.Endpoint) int { return endpointPort(ep, p) })
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
		} else {
			c = addrCluster(name, []model.Endpoint{{Address: host}}, func(model.Endpoint) int { return p.Target() })
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		}
		if e.TLS != nil && (p.Protocol.IsHTTP() || p.Protocol == model.ProtocolTCP) {
			sni := e.TLS.SNI
			if sni == "" {
				sni = host
			}
			c.TransportSocket = b.originationTLS(path, sni)
		}
		return c, nil
	})
}

// addrCluster is a cluster with inline endpoints: STATIC when every address
// is an IP, STRICT_DNS otherwise.
func addrCluster(name string, eps []model.Endpoint, port func(model.Endpoint) int) *clusterv3.Cluster {
	typ := clusterv3.Cluster_STATIC
	for _, e := range eps {
		if !isIP(e.Address) {
			typ = clusterv3.Cluster_STRICT_DNS
		}
	}
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: typ},
		ConnectTimeout:       dur(defaultConnectTimeout),
		LoadAssignment:       loadAssignment(name, eps, port),
	}
	if typ == clusterv3.Cluster_STRICT_DNS {
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	return c
}

// inboundAppCluster is the local application behind a sidecar, on loopback
// at the target port.
func (b *builder) inboundAppCluster(s *model.Service, p *model.Port) *Resource {
	name := inboundCluster(p.Number)
	key := name + "@" + strconv.Itoa(p.Target()) + "/" + string(p.Protocol)
	path := b.svcPath(s.Name, "ports")
	return b.intern(resource.ClusterType, name, key, path, func() (proto.Message, []*Resource) {
		c := addrCluster(name, []model.Endpoint{{Address: "127.0.0.1"}}, func(model.Endpoint) int { return p.Target() })
		b.httpOptions(path, c, p.Protocol, nil)
		return c, nil
	})
}

// statsCluster is Envoy's admin interface, where /stats/prometheus lives.
func (b *builder) statsCluster() *Resource {
	return b.intern(resource.ClusterType, StatsCluster, StatsCluster, "", func() (proto.Message, []*Resource) {
		return addrCluster(StatsCluster, []model.Endpoint{{Address: "127.0.0.1"}}, func(model.Endpoint) int { return AdminPort }), nil
	})
}

// hostPortCluster is a cluster to HOST:PORT given as text (tracing
// collectors, Wasm module servers), with TLS when tlsSNI is set and HTTP/2
// when h2 is set.
func (b *builder) hostPortCluster(path, name, host string, port int, tlsSNI string, h2 bool) *Resource {
	return b.intern(resource.ClusterType, name, name, path, func() (proto.Message, []*Resource) {
		c := addrCluster(name, []model.Endpoint{{Address: host}}, func(model.Endpoint) int { return port })
		if tlsSNI != "" {
			c.TransportSocket = b.originationTLS(path, tlsSNI)
		}
		if h2 {
			b.httpOptions(path, c, model.ProtocolHTTP2, nil)
		}
		return c, nil
	})
}
