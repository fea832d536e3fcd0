package render

import (
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	wasmhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/snapshot"
)

// Render's finding codes (GM08xx). They are stable: CI filters on them.
const (
	// CodeUnresolved: the model names something that does not exist
	// (service, external, gateway, port) where render needs it.
	CodeUnresolved = "GM0801"
	// CodeInvalidResource: an emitted resource fails Envoy's own validation.
	CodeInvalidResource = "GM0802"
	// CodeDangling: a proxy's resource references a route config, cluster
	// or endpoint assignment the proxy does not receive.
	CodeDangling = "GM0803"
	// CodeSecret: an SDS secret name that will not be served.
	CodeSecret = "GM0804"
	// CodeFilterOrder: an HTTP connection manager without the router last.
	CodeFilterOrder = "GM0805"
	// CodeWeights: weighted clusters whose weights total 0.
	CodeWeights = "GM0806"
	// CodeTimeout: a negative route or per-try timeout.
	CodeTimeout = "GM0807"
	// CodeInvalidValue: a value render cannot express (bad regex, bad
	// host:port).
	CodeInvalidValue = "GM0808"
	// CodeUnsupported: a combination the target proxy cannot do.
	CodeUnsupported = "GM0809"
	// CodeConflict: two different resources claim one name in one proxy.
	CodeConflict = "GM0810"
)

// refs is what one resource references, extracted from the emitted protos
// themselves (not from the builder's intentions), once per distinct resource.
type refs struct {
	routes   []string
	clusters []string
	// eds is the assignment an EDS cluster needs.
	eds     string
	secrets []string
}

// validate checks every distinct resource once (generated ValidateAll plus
// the semantic checks Envoy and grpc-go would NACK on), then every proxy's
// references. Go-control-plane's Snapshot.Consistent is not enough: it does
// not look inside API listeners.
func (b *builder) validate() {
	for _, px := range b.checked {
		if l := px.shared; l != nil && !l.checked {
			l.checked = true
			for _, t := range snapshot.Rendered() {
				for _, r := range l.byType[t] {
					if r.refs == nil {
						b.checkResource(r)
					}
				}
			}
			l.unresolved = unresolvedIn(l)
			b.checkLayerSecrets(px, l)
		}
		for _, t := range snapshot.Rendered() {
			for _, r := range px.own[t] {
				if r.refs == nil {
					b.checkResource(r)
				}
			}
		}
		b.checkProxy(px)
	}
}

// checkResource validates one resource and fills its refs.
func (b *builder) checkResource(r *Resource) {
	r.refs = &refs{}
	if rc, ok := r.Message.(*routev3.RouteConfiguration); ok {
		b.validateRouteConfig(r, rc)
	} else if v, ok := r.Message.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			b.errorf(CodeInvalidResource, r.origin, "%s %q: %v", shortType(r.typeURL), r.Name, err)
		}
	}
	w := walker{b: b, r: r}
	switch m := r.Message.(type) {
	case *listenerv3.Listener:
		w.listener(m)
	case *routev3.RouteConfiguration:
		w.routeConfig(m)
	case *clusterv3.Cluster:
		w.cluster(m)
	}
}

// validateRouteConfig runs the generated validation of a route config with
// each distinct virtual host validated once: sidecar route configs embed
// the same (shared, memoised) virtual hosts, and validating their domains is
// the costliest part of ValidateAll at scale. The config's own fields are
// validated with its virtual hosts detached for the call (render is single
// threaded and the message is not yet published).
func (b *builder) validateRouteConfig(r *Resource, rc *routev3.RouteConfiguration) {
	vhs := rc.VirtualHosts
	rc.VirtualHosts = nil
	err := rc.ValidateAll()
	rc.VirtualHosts = vhs
	if err != nil {
		b.errorf(CodeInvalidResource, r.origin, "%s %q: %v", shortType(r.typeURL), r.Name, err)
	}
	for _, vh := range vhs {
		if b.validVHost[vh] {
			continue
		}
		b.validVHost[vh] = true
		if err := vh.ValidateAll(); err != nil {
			b.errorf(CodeInvalidResource, r.origin, "%s %q: virtual host %q: %v", shortType(r.typeURL), r.Name, vh.Name, err)
		}
	}
}

// hasIn reports whether a sorted list holds name.
func hasIn(rs []*Resource, name string) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Name >= name })
	return i < len(rs) && rs[i].Name == name
}

// unresolvedIn lists a layer's resources that reference something the layer
// lacks: only those can make a proxy of the layer dangle. Secrets do not
// depend on the proxy; checkLayerSecrets checks them once per layer.
func unresolvedIn(l *Layer) []*Resource {
	var out []*Resource
	for _, t := range snapshot.Rendered() {
		for _, r := range l.byType[t] {
			ok := true
			for _, n := range r.refs.routes {
				ok = ok && hasIn(l.byType[resource.RouteType], n)
			}
			for _, n := range r.refs.clusters {
				ok = ok && hasIn(l.byType[resource.ClusterType], n)
			}
			if r.refs.eds != "" {
				ok = ok && hasIn(l.byType[resource.EndpointType], r.refs.eds)
			}
			if !ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// checkProxy checks that everything a proxy's resources reference is in the
// proxy too. A layer's resources are checked per proxy only where the layer
// alone does not satisfy them.
// A dangling reference inside a shared resource is reported once, naming the
// first proxy (in class order) that has it.
func (b *builder) checkProxy(px *Proxy) {
	once := b.once
	// Resources are sorted by name, so membership is a binary search; no
	// per-proxy maps (20,000 proxies at 10,000 services).
	has := func(typeURL, name string) bool {
		if hasIn(px.own[typeURL], name) {
			return true
		}
		return px.shared != nil && hasIn(px.shared.byType[typeURL], name)
	}
	check := func(r *Resource) {
		for _, n := range r.refs.routes {
			if !has(resource.RouteType, n) && once(r, "rds:"+n) {
				b.errorf(CodeDangling, r.origin, "proxy %q: listener %q uses route config %q, which is not rendered", px.Class, r.Name, n)
			}
		}
		for _, n := range r.refs.clusters {
			if !has(resource.ClusterType, n) && once(r, "cds:"+n) {
				path := r.origin
				if p, ok := b.refOrigin[n]; ok {
					path = p
				}
				b.errorf(CodeDangling, path, "proxy %q: %s %q routes to cluster %q, which does not exist", px.Class, shortType(r.typeURL), r.Name, n)
			}
		}
		if r.refs.eds != "" && !has(resource.EndpointType, r.refs.eds) && once(r, "eds") {
			b.errorf(CodeDangling, r.origin, "proxy %q: cluster %q has no endpoint assignment %q", px.Class, r.Name, r.refs.eds)
		}
		for _, s := range r.refs.secrets {
			if !b.secretServed(s) && once(r, "sds:"+s) {
				b.errorf(CodeSecret, r.origin, "proxy %q: %s %q uses secret %q, which is not served", px.Class, shortType(r.typeURL), r.Name, s)
			}
		}
	}
	for _, t := range snapshot.Rendered() {
		for _, r := range px.own[t] {
			check(r)
		}
	}
	if px.shared != nil {
		for _, r := range px.shared.unresolved {
			check(r)
		}
	}
}

// once reports whether a finding about r is new: a shared resource is
// reported once, not once per proxy.
func (b *builder) once(r *Resource, what string) bool {
	k := r.typeURL + "\x00" + r.Name + "\x00" + r.Version + "\x00" + what
	if b.reported[k] {
		return false
	}
	b.reported[k] = true
	return true
}

// checkLayerSecrets checks the SDS names a layer's resources use, once for
// every proxy of the layer (whether a secret is served does not depend on
// the proxy), naming px, the first proxy that has the layer.
func (b *builder) checkLayerSecrets(px *Proxy, l *Layer) {
	for _, t := range snapshot.Rendered() {
		for _, r := range l.byType[t] {
			for _, s := range r.refs.secrets {
				if !b.secretServed(s) && b.once(r, "sds:"+s) {
					b.errorf(CodeSecret, r.origin, "proxy %q: %s %q uses secret %q, which is not served", px.Class, shortType(r.typeURL), r.Name, s)
				}
			}
		}
	}
}

// secretServed reports whether an SDS name will be served: the workload's
// own pair, or a gateway credential (and its "-cacert") that the input says
// exists (any, when Input.Credentials is nil).
func (b *builder) secretServed(name string) bool {
	if name == SecretDefault || name == SecretRootCA {
		return true
	}
	cred := strings.TrimSuffix(name, "-cacert")
	if b.in.Credentials != nil {
		return b.in.Credentials[cred]
	}
	for _, gn := range b.m.GatewayNames() {
		for _, l := range b.m.Gateways[gn].Listeners {
			if l.TLS != nil && l.TLS.CredentialName == cred {
				return true
			}
		}
	}
	return false
}

// walker extracts references and checks semantics inside one resource.
type walker struct {
	b *builder
	r *Resource
}

func (w *walker) errorf(code, format string, args ...any) {
	w.b.errorf(code, w.r.origin, "%s %q: "+format, append([]any{shortType(w.r.typeURL), w.r.Name}, args...)...)
}

// open reads an Any. Any values render packed itself are read from the
// message they were marshalled from (same content, no parsing, no copy);
// others are unmarshalled into fresh.
func open[T proto.Message](w *walker, a *anypb.Any, fresh T) (T, bool) {
	if src, ok := w.b.packed[a]; ok {
		if t, ok := src.(T); ok {
			return t, true
		}
	}
	if err := a.UnmarshalTo(fresh); err != nil {
		w.errorf(CodeInvalidResource, "unpack %s: %v", a.GetTypeUrl(), err)
		return fresh, false
	}
	return fresh, true
}

func (w *walker) listener(l *listenerv3.Listener) {
	if api := l.GetApiListener().GetApiListener(); api != nil {
		if h, ok := open(w, api, &hcmv3.HttpConnectionManager{}); ok {
			w.hcm(h)
		}
	}
	chains := l.FilterChains
	if l.DefaultFilterChain != nil {
		chains = append(append([]*listenerv3.FilterChain(nil), chains...), l.DefaultFilterChain)
	}
	for _, fc := range chains {
		w.transportSocket(fc.GetTransportSocket().GetTypedConfig(), false)
		for _, f := range fc.Filters {
			tc := f.GetTypedConfig()
			switch tc.GetTypeUrl() {
			case "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager":
				if h, ok := open(w, tc, &hcmv3.HttpConnectionManager{}); ok {
					w.hcm(h)
				}
			case "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy":
				if tp, ok := open(w, tc, &tcpproxyv3.TcpProxy{}); ok {
					if c := tp.GetCluster(); c != "" {
						w.r.refs.clusters = append(w.r.refs.clusters, c)
					}
					total := uint32(0)
					for _, c := range tp.GetWeightedClusters().GetClusters() {
						w.r.refs.clusters = append(w.r.refs.clusters, c.Name)
						total += c.Weight
					}
					if tp.GetWeightedClusters() != nil && total == 0 {
						w.errorf(CodeWeights, "tcp_proxy weights total 0")
					}
				}
			}
		}
	}
}

func (w *walker) hcm(h *hcmv3.HttpConnectionManager) {
	fs := h.HttpFilters
	if len(fs) == 0 || fs[len(fs)-1].GetTypedConfig().GetTypeUrl() != "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" {
		w.errorf(CodeFilterOrder, "http connection manager %q does not end with the router filter", h.StatPrefix)
	}
	for i, f := range fs {
		if i < len(fs)-1 && f.Name == filterRouter {
			w.errorf(CodeFilterOrder, "router filter is not last in %q", h.StatPrefix)
		}
		if tc := f.GetTypedConfig(); tc.GetTypeUrl() == "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm" {
			if wm, ok := open(w, tc, &wasmhttpv3.Wasm{}); ok {
				if c := wm.GetConfig().GetVmConfig().GetCode().GetRemote().GetHttpUri().GetCluster(); c != "" {
					w.r.refs.clusters = append(w.r.refs.clusters, c)
				}
			}
		}
	}
	if rds := h.GetRds(); rds != nil {
		w.r.refs.routes = append(w.r.refs.routes, rds.RouteConfigName)
	}
	if rc := h.GetRouteConfig(); rc != nil {
		w.routeConfig(rc)
	}
	if tc := h.GetTracing().GetProvider().GetTypedConfig(); tc != nil {
		switch tc.GetTypeUrl() {
		case "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig":
			if z, ok := open(w, tc, &tracev3.ZipkinConfig{}); ok {
				w.r.refs.clusters = append(w.r.refs.clusters, z.CollectorCluster)
			}
		case "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig":
			if o, ok := open(w, tc, &tracev3.OpenTelemetryConfig{}); ok {
				w.r.refs.clusters = append(w.r.refs.clusters, o.GetGrpcService().GetEnvoyGrpc().GetClusterName())
			}
		}
	}
}

func (w *walker) routeConfig(rc *routev3.RouteConfiguration) {
	for _, vh := range rc.VirtualHosts {
		for _, rt := range vh.Routes {
			a := rt.GetRoute()
			if a == nil {
				continue
			}
			if c := a.GetCluster(); c != "" {
				w.r.refs.clusters = append(w.r.refs.clusters, c)
			}
			rw := w
			if p, ok := w.b.routeOrigin[rt]; ok {
				rw = &walker{b: w.b, r: &Resource{Name: w.r.Name, typeURL: w.r.typeURL, origin: p, refs: w.r.refs}}
			}
			if wc := a.GetWeightedClusters(); wc != nil {
				total := uint32(0)
				for _, c := range wc.Clusters {
					w.r.refs.clusters = append(w.r.refs.clusters, c.Name)
					total += c.GetWeight().GetValue()
				}
				if total == 0 {
					rw.errorf(CodeWeights, "route %q in %q: weights total 0", rt.Name, vh.Name)
				}
			}
			for _, m := range a.RequestMirrorPolicies {
				w.r.refs.clusters = append(w.r.refs.clusters, m.Cluster)
			}
			if t := a.GetTimeout(); t != nil && (t.Seconds < 0 || t.Nanos < 0) {
				rw.errorf(CodeTimeout, "route %q in %q: negative timeout", rt.Name, vh.Name)
			}
			if t := a.GetRetryPolicy().GetPerTryTimeout(); t != nil && (t.Seconds < 0 || t.Nanos < 0) {
				rw.errorf(CodeTimeout, "route %q in %q: negative per-try timeout", rt.Name, vh.Name)
			}
		}
	}
}

func (w *walker) cluster(c *clusterv3.Cluster) {
	if c.GetType() == clusterv3.Cluster_EDS {
		n := c.GetEdsClusterConfig().GetServiceName()
		if n == "" {
			n = c.Name
		}
		w.r.refs.eds = n
	}
	w.transportSocket(c.GetTransportSocket().GetTypedConfig(), true)
}

// transportSocket collects the SDS names a TLS context uses.
func (w *walker) transportSocket(a *anypb.Any, upstream bool) {
	if a == nil {
		return
	}
	var common *tlsv3.CommonTlsContext
	if upstream {
		u, ok := open(w, a, &tlsv3.UpstreamTlsContext{})
		if !ok {
			return
		}
		common = u.CommonTlsContext
	} else {
		d, ok := open(w, a, &tlsv3.DownstreamTlsContext{})
		if !ok {
			return
		}
		common = d.CommonTlsContext
	}
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		w.r.refs.secrets = append(w.r.refs.secrets, s.Name)
	}
	if s := common.GetValidationContextSdsSecretConfig(); s != nil {
		w.r.refs.secrets = append(w.r.refs.secrets, s.Name)
	}
	if s := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); s != nil {
		w.r.refs.secrets = append(w.r.refs.secrets, s.Name)
	}
}
