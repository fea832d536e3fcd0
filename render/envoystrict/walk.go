package envoystrict

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// facts is what the check keeps about one distinct resource after walking
// it: the names it references and, for a listener, its addresses.
type facts struct {
	routes   []string
	clusters []string
	// eds is the assignment an EDS cluster needs.
	eds     string
	secrets []string
	// addrs are a listener's socket addresses (none for API listeners).
	addrs []address
	// bound is a listener's bind_to_port (default true).
	bound bool
	// origDst is a listener's use_original_dst.
	origDst bool
}

// vhostFacts is what one distinct virtual host references. Sidecar route
// configs embed the same virtual host messages, so each is walked once.
type vhostFacts struct {
	clusters []string
}

// walk visits one resource, calling each per-resource rule on the nodes it
// applies to, and collects the resource's facts.
type walk struct {
	c  *Checker
	cl Class
	r  *Resource
	f  *facts
}

// errorf records a finding about the walked resource, prefixed with its
// type and name.
func (w *walk) errorf(code, format string, args ...any) {
	w.errorAt(code, "", format, args...)
}

// errorAt is errorf at a more precise model path ("" for the resource's).
func (w *walk) errorAt(code, path, format string, args ...any) {
	w.c.errorf(code, w.r, path, "%s %q: "+format, append([]any{snapshot.Noun(w.r.TypeURL), w.r.Name}, args...)...)
}

// open reads an Any: the message it was packed from when the caller still
// has it (same content, no parsing), else a fresh unmarshal into a
// message from fresh (made only then: opening is on every walk's path).
func open[T proto.Message](w *walk, a *anypb.Any, newT func() T) (T, bool) {
	if u := w.c.opt.Unpack; u != nil {
		if src := u(a); src != nil {
			if t, ok := src.(T); ok {
				return t, true
			}
		}
	}
	fresh := newT()
	if err := a.UnmarshalTo(fresh); err != nil {
		w.errorf(CodeInvalidResource, "unpack %s: %v", a.GetTypeUrl(), err)
		return fresh, false
	}
	return fresh, true
}

// resource dispatches on the resource's type.
func (w *walk) resource() {
	switch m := w.r.Message.(type) {
	case *listenerv3.Listener:
		w.listener(m)
	case *routev3.RouteConfiguration:
		w.routeConfig(m)
	case *clusterv3.Cluster:
		w.cluster(m)
	}
}

// Type URLs of the typed configs the walk opens.
const (
	typeHCM      = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	typeTCPProxy = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
	typeRouter   = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	typeWasm     = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	typeHTTPRBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	typeNetRBAC  = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
	typeZipkin   = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
	typeOTel     = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
)

func (w *walk) listener(l *listenerv3.Listener) {
	w.listenerAddresses(l)
	w.listenerChains(l)
	w.filterChainMatches(l)
	if api := l.GetApiListener().GetApiListener(); api != nil {
		if h, ok := open(w, api, newOf[hcmv3.HttpConnectionManager]); ok {
			w.hcm(h)
		}
	}
	// The filter chains, then the default one (without copying the list).
	for i := 0; i <= len(l.FilterChains); i++ {
		fc := l.DefaultFilterChain
		if i < len(l.FilterChains) {
			fc = l.FilterChains[i]
		} else if fc == nil {
			break
		}
		w.downstreamTLS(fc)
		w.networkFilterOrder(fc)
		for _, f := range fc.Filters {
			tc := f.GetTypedConfig()
			switch tc.GetTypeUrl() {
			case typeHCM:
				if h, ok := open(w, tc, newOf[hcmv3.HttpConnectionManager]); ok {
					w.hcm(h)
				}
			case typeTCPProxy:
				w.tcpProxy(tc)
			case typeNetRBAC:
				w.netRBACRegexes(tc)
			}
		}
	}
}

func (w *walk) hcm(h *hcmv3.HttpConnectionManager) {
	w.httpFilterOrder(h)
	for _, f := range h.HttpFilters {
		tc := f.GetTypedConfig()
		switch tc.GetTypeUrl() {
		case typeWasm:
			w.wasmRefs(tc)
		case typeHTTPRBAC:
			w.httpRBACRegexes(tc)
		}
	}
	if rds := h.GetRds(); rds != nil {
		w.f.routes = append(w.f.routes, rds.RouteConfigName)
	}
	if rc := h.GetRouteConfig(); rc != nil {
		w.routeConfig(rc)
	}
	w.tracingRefs(h)
}

func (w *walk) routeConfig(rc *routev3.RouteConfiguration) {
	w.vhostDomains(rc)
	for _, vh := range rc.VirtualHosts {
		w.f.clusters = append(w.f.clusters, w.vhost(vh).clusters...)
	}
}

// vhost walks one distinct virtual host once.
func (w *walk) vhost(vh *routev3.VirtualHost) *vhostFacts {
	if v, ok := w.c.vhosts[vh]; ok {
		return v
	}
	if v, ok := w.c.opt.Memo.vhost(vh); ok {
		w.c.vhosts[vh] = v
		return v
	}
	v := &vhostFacts{}
	w.c.vhosts[vh] = v
	n := len(w.c.diags)
	defer func() {
		if len(w.c.diags) == n {
			w.c.opt.Memo.putVHost(vh, v)
		}
	}()
	for _, rt := range vh.Routes {
		path := ""
		if rp := w.c.opt.RoutePath; rp != nil {
			path = rp(rt)
		}
		rw := routeWalk{w: w, vh: vh, rt: rt, path: path, v: v}
		rw.regexes()
		if a := rt.GetRoute(); a != nil {
			rw.refs(a)
			rw.weights(a)
			rw.timeouts(a)
		}
	}
	return v
}

// routeWalk visits one route of a virtual host.
type routeWalk struct {
	w    *walk
	vh   *routev3.VirtualHost
	rt   *routev3.Route
	path string
	v    *vhostFacts
}

// errorf records a finding about the route, at its model path.
func (rw *routeWalk) errorf(code, format string, args ...any) {
	rw.w.errorAt(code, rw.path, "route %q in %q: "+format, append([]any{rw.rt.Name, rw.vh.Name}, args...)...)
}

func (w *walk) cluster(c *clusterv3.Cluster) {
	w.clusterType(c)
	if c.GetType() == clusterv3.Cluster_EDS {
		n := c.GetEdsClusterConfig().GetServiceName()
		if n == "" {
			n = c.Name
		}
		w.f.eds = n
	}
	w.upstreamTLS(c)
}

// newOf makes an empty message for open.
func newOf[T any]() *T { return new(T) }
