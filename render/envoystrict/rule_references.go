package envoystrict

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	wasmhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	"google.golang.org/protobuf/types/known/anypb"
)

// Rule: every RDS, CDS, EDS and SDS name a class's resources use resolves
// within the class.
//
// Envoy does not NACK a listener whose route config or cluster is missing:
// it waits. An HCM with RDS stays warming until the route configuration
// arrives (source/common/router/rds_impl.cc, RdsRouteConfigSubscription:
// the listener's init target completes only on the first RDS response), a
// route to an unknown cluster answers 503 NC ("cluster_not_found",
// source/common/router/router.cc, Filter::decodeHeaders), an EDS cluster
// without its ClusterLoadAssignment stays warming with no hosts
// (source/extensions/clusters/eds/eds.cc), and an SDS name nobody serves
// keeps the listener or cluster warming for ever
// (source/common/secret/sds_api.cc). go-control-plane's
// Snapshot.Consistent (pkg/cache/v3/snapshot.go) is the same check on the
// control-plane side; it does not look inside API listeners, this does.
// In an ADS snapshot everything a class needs is in its own config, so a
// name that does not resolve there is a config that never becomes ready.

// tcpProxy collects a tcp_proxy's clusters and checks its weights.
func (w *walk) tcpProxy(a *anypb.Any) {
	tp, ok := open(w, a, newOf[tcpproxyv3.TcpProxy])
	if !ok {
		return
	}
	if c := tp.GetCluster(); c != "" {
		w.f.clusters = append(w.f.clusters, c)
	}
	for _, c := range tp.GetWeightedClusters().GetClusters() {
		w.f.clusters = append(w.f.clusters, c.Name)
	}
	w.tcpWeights(tp)
}

// wasmRefs collects the cluster a Wasm module is fetched from.
func (w *walk) wasmRefs(a *anypb.Any) {
	if wm, ok := open(w, a, newOf[wasmhttpv3.Wasm]); ok {
		if c := wm.GetConfig().GetVmConfig().GetCode().GetRemote().GetHttpUri().GetCluster(); c != "" {
			w.f.clusters = append(w.f.clusters, c)
		}
	}
}

// tracingRefs collects a tracer's collector cluster.
func (w *walk) tracingRefs(h *hcmv3.HttpConnectionManager) {
	tc := h.GetTracing().GetProvider().GetTypedConfig()
	switch tc.GetTypeUrl() {
	case typeZipkin:
		if z, ok := open(w, tc, newOf[tracev3.ZipkinConfig]); ok {
			w.f.clusters = append(w.f.clusters, z.CollectorCluster)
		}
	case typeOTel:
		if o, ok := open(w, tc, newOf[tracev3.OpenTelemetryConfig]); ok {
			w.f.clusters = append(w.f.clusters, o.GetGrpcService().GetEnvoyGrpc().GetClusterName())
		}
	}
}

// refs collects the clusters a route sends to (and mirrors to).
func (rw *routeWalk) refs(a *routev3.RouteAction) {
	if c := a.GetCluster(); c != "" {
		rw.v.clusters = append(rw.v.clusters, c)
	}
	for _, c := range a.GetWeightedClusters().GetClusters() {
		rw.v.clusters = append(rw.v.clusters, c.Name)
	}
	for _, m := range a.RequestMirrorPolicies {
		rw.v.clusters = append(rw.v.clusters, m.Cluster)
	}
}

// secretNames collects the SDS names of a TLS context.
func (w *walk) secretNames(common *tlsv3.CommonTlsContext) {
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		w.f.secrets = append(w.f.secrets, s.Name)
	}
	if s := common.GetValidationContextSdsSecretConfig(); s != nil {
		w.f.secrets = append(w.f.secrets, s.Name)
	}
	if s := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); s != nil {
		w.f.secrets = append(w.f.secrets, s.Name)
	}
}

// resolvedIn reports whether every RDS, CDS and EDS name of f is in s.
func (c *Checker) resolvedIn(f *facts, s *Set) bool {
	for _, n := range f.routes {
		if !s.has(resource.RouteType, n) {
			return false
		}
	}
	for _, n := range f.clusters {
		if !s.has(resource.ClusterType, n) {
			return false
		}
	}
	return f.eds == "" || s.has(resource.EndpointType, f.eds)
}

// checkReferences checks the class's own resources, and the shared ones
// the shared set alone does not satisfy, against everything the class
// has. A dangling name in a shared resource is reported once.
func (c *Checker) checkReferences(cl Class, sf *setFacts) {
	has := func(typeURL, name string) bool {
		return cl.Own.has(typeURL, name) || cl.Shared.has(typeURL, name)
	}
	check := func(r *Resource) {
		f := c.res[r]
		for _, n := range f.routes {
			if !has(resource.RouteType, n) && c.once(r, "rds:"+n) {
				c.errorf(CodeDangling, r, "", "proxy %q: listener %q uses route config %q, which is not rendered", cl.Name, r.Name, n)
			}
		}
		for _, n := range f.clusters {
			if !has(resource.ClusterType, n) && c.once(r, "cds:"+n) {
				path := ""
				if rp := c.opt.RefPath; rp != nil {
					path = rp(n)
				}
				c.errorf(CodeDangling, r, path, "proxy %q: %s %q routes to cluster %q, which does not exist", cl.Name, snapshot.Noun(r.TypeURL), r.Name, n)
			}
		}
		if f.eds != "" && !has(resource.EndpointType, f.eds) && c.once(r, "eds") {
			c.errorf(CodeDangling, r, "", "proxy %q: cluster %q has no endpoint assignment %q", cl.Name, r.Name, f.eds)
		}
	}
	for _, t := range types {
		for _, r := range cl.Own.Resources(t) {
			check(r)
		}
	}
	for _, r := range sf.unresolved {
		check(r)
	}
}

// checkSecrets checks the SDS names one resource uses. Whether a secret is
// served does not depend on the class, so this runs once per resource,
// naming the first class that has it.
func (c *Checker) checkSecrets(cl Class, r *Resource, f *facts) {
	served := c.opt.SecretServed
	if served == nil {
		return
	}
	for _, s := range f.secrets {
		if !served(s) && c.once(r, "sds:"+s) {
			c.errorf(CodeSecret, r, "", "proxy %q: %s %q uses secret %q, which is not served", cl.Name, snapshot.Noun(r.TypeURL), r.Name, s)
		}
	}
}
