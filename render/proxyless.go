package render

import (
	"slices"
	"strconv"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Proxyless gRPC (class proxyless/NS/SVC/VERSION): grpc-go's xds:/// client
// and its xDS-enabled server talk to gitmesh directly. grpc-go is strict, so
// this output follows what its xdsresource package accepts:
//
// Client side, for every service the workload may call and every HTTP port:
//   - an API listener named `FQDN:PORT` (greeter.default.svc.cluster.local:50051)
//     and, for services in the caller's own namespace, `NAME:PORT`
//     (greeter:50051) — the target a client dials as xds:///greeter:50051;
//   - its HCM uses RDS with a route config of the same name; filters are
//     the fault filter (only when a route injects faults) and the router,
//     last; no RBAC (grpc-go's RBAC filter is server-only), no tracing;
//   - EDS clusters `outbound|PORT|VERSION|HOST` whose eds_config is ADS,
//     with mTLS from the certificate provider instance "default" and the
//     peer's SPIFFE id in match_subject_alt_names.
//
// Server side, for every port of the service:
//   - a listener named `grpc/server?xds.resource.listening_address=0.0.0.0:TARGETPORT`
//     for the target port and for every port an endpoint overrides it with
//     (grpc-go's default server name template; the server must listen on
//     0.0.0.0:TARGETPORT), address 0.0.0.0:TARGETPORT, no listener filters,
//     one filter chain: TLS (STRICT: client certificate required;
//     PERMISSIVE: TLS with the client certificate optional, because grpc-go
//     drops chains that match on transport protocol; DISABLE: plain text),
//     an HCM with RBAC and the router and an inline route config whose one
//     route has a non_forwarding_action, as grpc-go's server requires.
//
// External services and Wasm extensions do not apply to proxyless workloads.
//
// The client route configs carry the target service's routes as sidecars
// get them, with three differences: `timeout` becomes max_stream_duration
// (grpc-go reads no RouteAction.timeout), header edits are left out, and a
// destination that is an external service is an error (GM0809). The rest is
// emitted but grpc-go does not act on it — what it reads of a route is in
// grpc-go xds/internal/xdsclient/xdsresource/unmarshal_rds.go
// (routesProtoToSlice, generateRetryConfig; gRFC A28, A44): a :method
// header matcher never matches (:method is not request metadata), mirrors,
// rewrites and per_try_timeout are not read, retry_on keeps only cancelled,
// deadline-exceeded, internal, resource-exhausted and unavailable, and
// endpoint weights are ignored by round_robin. policies warns about each at
// the route (GM0207, policies/proxyless.go) and reports the external
// destination first (GM0208), so validate says so before anything runs.

// buildProxyless assembles the proxyless classes of a service's versions
// (all versions receive the same config).
func (b *builder) buildProxyless(s *model.Service, versions []string) {
	if len(versions) == 0 {
		return
	}
	var aliases []string
	for _, v := range versions[1:] {
		aliases = append(aliases, nodeid.Proxyless(s.Namespace, s.Name, v))
	}
	p := b.newProxy(nodeid.Proxyless(s.Namespace, s.Name, versions[0]), KindProxyless)
	for i := range s.Ports {
		for _, lp := range b.listeningPorts(s, &s.Ports[i], versions) {
			p.add(b.grpcServerListener(s, &s.Ports[i], lp))
		}
	}
	for _, t := range b.ix.depsOf(s).services {
		for i := range t.Ports {
			pt := &t.Ports[i]
			p.add(b.serviceCluster(flavourGRPC, t, pt, ""))
			for _, v := range b.ix.versionNames(t) {
				p.add(b.serviceCluster(flavourGRPC, t, pt, v))
			}
			if !pt.Protocol.IsHTTP() {
				continue
			}
			p.add(b.grpcClientListener(t, pt.Number, s.Namespace, b.ix.host(t))...)
			if t.Namespace == s.Namespace {
				p.add(b.grpcClientListener(t, pt.Number, s.Namespace, t.Name)...)
			}
		}
	}
	p.finish(aliases...)
}

// grpcClientListener renders the API listener `HOST:PORT` and its route
// config of the same name. Both depend only on the target and on whether
// the caller shares its namespace, so they are shared by all callers.
func (b *builder) grpcClientListener(t *model.Service, port int, callerNS, host string) []*Resource {
	name := ProxylessListener(host, port)
	vh := b.serviceVHost(flavourGRPC, t, port, callerNS)
	key := "grpc|" + name + "|" + strconv.FormatBool(callerNS == t.Namespace)
	path := model.Path("services", t.Name, "routes")
	rc := b.intern(resource.RouteType, name, key, path, func() (proto.Message, []*Resource) {
		return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{vh.vh}}, vh.deps
	})
	lst := b.intern(resource.ListenerType, name, key+"|fault="+strconv.FormatBool(vh.fault), path, func() (proto.Message, []*Resource) {
		h, deps := b.hcm(hcmSpec{path: path, statPrefix: name, rds: name, chain: chain{fault: vh.fault}})
		return &listenerv3.Listener{
			Name:        name,
			ApiListener: &listenerv3.ApiListener{ApiListener: b.pack(path, h)},
		}, deps
	})
	return []*Resource{rc, lst}
}

// listeningPorts are the ports a proxyless service's workloads listen on
// for port: the target port, and every endpoint's override of it in any
// version (every version gets one config). A grpc-go xDS server asks for
// the listener named after the address it listens on, so a workload whose
// endpoint overrides the port would otherwise ask for a listener that does
// not exist and never serve.
func (b *builder) listeningPorts(s *model.Service, port *model.Port, versions []string) []int {
	ports := []int{port.Target()}
	for _, v := range versions {
		for _, e := range endpointsOf(b.in, s, v) {
			if n := endpointPort(e, port); !slices.Contains(ports, n) {
				ports = append(ports, n)
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// grpcServerListener renders the xDS server listener of one port for
// workloads listening on tp.
func (b *builder) grpcServerListener(s *model.Service, port *model.Port, tp int) *Resource {
	name := grpcServerListener(tp)
	path := model.Path("services", s.Name, "ports")
	return b.intern(resource.ListenerType, name, "grpc-server|"+s.Name+"|"+name, path, func() (proto.Message, []*Resource) {
		deny, allow := b.rbacRules(s, port.Number, false)
		c := chain{}
		if deny != nil {
			c.deny = httpRBAC(deny)
		}
		if allow != nil {
			c.allow = httpRBAC(allow)
		}
		rc := &routev3.RouteConfiguration{
			Name: "inbound|" + strconv.Itoa(port.Number),
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    "inbound|grpc|" + strconv.Itoa(port.Number),
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Name:   "default",
					Match:  catchAll(),
					Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
				}},
			}},
		}
		h, deps := b.hcm(hcmSpec{path: path, statPrefix: "inbound_" + strconv.Itoa(port.Number), inline: rc, chain: c})
		fc := &listenerv3.FilterChain{
			Name:    name,
			Filters: []*listenerv3.Filter{b.hcmFilter(path, h)},
		}
		switch b.ix.mtls(s) {
		case model.MTLSStrict:
			fc.TransportSocket = b.grpcDownstreamTLS(path, true)
		case model.MTLSPermissive:
			fc.TransportSocket = b.grpcDownstreamTLS(path, false)
		}
		return &listenerv3.Listener{
			Name:         name,
			Address:      socketAddr("0.0.0.0", tp),
			FilterChains: []*listenerv3.FilterChain{fc},
		}, deps
	})
}
