package render

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	wasmhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcedetectorsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/tracers/opentelemetry/resource_detectors/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// The HTTP filter chain of every HTTP connection manager is built here, in
// ONE explicit order (no registration in init functions):
//
//	fault → wasm AUTHN… → wasm AUTHZ… → RBAC deny → RBAC allow → wasm STATS… → router
//
// Why this order:
//   - fault first: an injected delay or abort must cost nothing downstream
//     and must not be counted as a real request by the plugins (as in Istio,
//     where fault runs before everything). It is used on outbound routes only.
//   - AUTHN plugins establish who the caller is, so they run before any
//     authorization decision (Istio's WasmPlugin AUTHN phase).
//   - AUTHZ plugins run before RBAC, so a plugin can deny first and RBAC
//     remains the last word on mesh identity (Istio's AUTHZ phase).
//   - RBAC deny before allow: a deny rule must win over any allow rule.
//   - STATS plugins see only requests that were let in (Istio's STATS phase).
//   - router last: it is terminal; Envoy and grpc-go reject anything after it.

// HTTP filter names. The fault filter's name is also the key of per-route
// fault config, so it must stay Envoy's canonical name.
const (
	filterFault     = "envoy.filters.http.fault"
	filterRBACDeny  = "envoy.filters.http.rbac.deny"
	filterRBACAllow = "envoy.filters.http.rbac"
	filterRouter    = "envoy.filters.http.router"
	filterWasm      = "envoy.filters.http.wasm"
	hcmName         = "envoy.filters.network.http_connection_manager"
)

// chain is what an HCM's filter chain is made of.
type chain struct {
	fault bool
	exts  []*model.Extension
	deny  *rbachttpv3.RBAC
	allow *rbachttpv3.RBAC
}

// httpFilters renders the chain in the order documented above, and the
// clusters the Wasm modules are fetched from.
func (b *builder) httpFilters(path string, c chain) ([]*hcmv3.HttpFilter, []*Resource) {
	var out []*hcmv3.HttpFilter
	var deps []*Resource
	add := func(name string, cfg *hcmv3.HttpFilter) {
		cfg.Name = name
		out = append(out, cfg)
	}
	typed := func(msg proto.Message) *hcmv3.HttpFilter {
		return &hcmv3.HttpFilter{ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: b.pack(path, msg)}}
	}
	wasm := func(phase string) {
		for _, e := range c.exts {
			if (e.Phase == phase) || (phase == model.PhaseStats && e.Phase != model.PhaseAuthn && e.Phase != model.PhaseAuthz) {
				f, dep := b.wasmFilter(e)
				if f != nil {
					add(filterWasm+"."+e.Name, f)
					deps = append(deps, dep)
				}
			}
		}
	}
	if c.fault {
		out = append(out, b.faultFilter())
	}
	wasm(model.PhaseAuthn)
	wasm(model.PhaseAuthz)
	if c.deny != nil {
		add(filterRBACDeny, typed(c.deny))
	}
	if c.allow != nil {
		add(filterRBACAllow, typed(c.allow))
	}
	wasm(model.PhaseStats)
	out = append(out, b.routerFilter())
	return out, deps
}

// faultConfig is a route's per-filter fault override; percentages are over
// a million so fractions of a percent survive.
func (b *builder) faultConfig(path string, f *model.Fault) *faultv3.HTTPFault {
	out := &faultv3.HTTPFault{}
	if d := f.Delay; d != nil {
		out.Delay = &faultcommonv3.FaultDelay{
			FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: dur(d.Fixed)},
			Percentage:         millionths(d.Percent),
		}
	}
	if a := f.Abort; a != nil {
		ab := &faultv3.FaultAbort{Percentage: millionths(a.Percent)}
		if a.GRPCStatus != 0 {
			ab.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: uint32(a.GRPCStatus)}
		} else {
			ab.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(a.HTTPStatus)}
		}
		out.Abort = ab
	}
	return out
}

// wasmFilter renders an extension as a Wasm filter whose module Envoy
// fetches from its URL (checked against sha256) through a cluster made for
// the module's host.
func (b *builder) wasmFilter(e *model.Extension) (*hcmv3.HttpFilter, *Resource) {
	path := model.Path("extensions", e.Name)
	scheme, host, port, ok := splitURL(e.Wasm.URL)
	if !ok {
		b.errorf(CodeUnsupported, path+".wasm.url", "wasm url %q: want http:// or https://", e.Wasm.URL)
		return nil, nil
	}
	sni := ""
	if scheme == "https" {
		sni = host
	}
	cname := wasmCluster(hostPort(host, port))
	cluster := b.hostPortCluster(path, cname, host, port, sni, false)
	cfg := &wasmv3.PluginConfig{
		Name:   e.Name,
		RootId: e.Name,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			VmId:    e.Name,
			Runtime: "envoy.wasm.runtime.v8",
			Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
				HttpUri: &corev3.HttpUri{
					Uri:              e.Wasm.URL,
					HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: cname},
					Timeout:          dur(30 * model.Second),
				},
				Sha256: e.Wasm.SHA256,
			}}},
		}},
		FailurePolicy: wasmv3.FailurePolicy_FAIL_CLOSED,
	}
	if e.FailOpen {
		cfg.FailurePolicy = wasmv3.FailurePolicy_FAIL_OPEN
	}
	if e.Config != "" {
		cfg.Configuration = b.pack(path+".config", wrapperspb.String(e.Config))
	}
	return &hcmv3.HttpFilter{ConfigType: &hcmv3.HttpFilter_TypedConfig{
		TypedConfig: b.pack(path, &wasmhttpv3.Wasm{Config: cfg}),
	}}, cluster
}

// splitURL takes scheme, host and port from an http(s) URL. It is written out
// rather than using package net/url to keep render free of network packages.
func splitURL(u string) (scheme, host string, port int, ok bool) {
	switch {
	case strings.HasPrefix(u, "http://"):
		scheme, port, u = "http", 80, u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		scheme, port, u = "https", 443, u[len("https://"):]
	default:
		return "", "", 0, false
	}
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	host = u
	if i := strings.LastIndexByte(u, ':'); i >= 0 && !strings.Contains(u[i:], "]") {
		n, err := strconv.Atoi(u[i+1:])
		if err != nil || n <= 0 || n > 65535 {
			return "", "", 0, false
		}
		host, port = u[:i], n
	}
	return scheme, host, port, host != ""
}

// tracing renders mesh.tracing for an HCM, and the collector's cluster.
// Proxyless clients get none: grpc-go does not trace from xDS config.
func (b *builder) tracing() (*hcmv3.HttpConnectionManager_Tracing, *Resource) {
	if !b.trace.done {
		b.trace.cfg, b.trace.cluster = b.buildTracing()
		b.trace.done = true
	}
	return b.trace.cfg, b.trace.cluster
}

// buildTracing does the work of tracing, once per Render.
func (b *builder) buildTracing() (*hcmv3.HttpConnectionManager_Tracing, *Resource) {
	t := b.m.Mesh.Tracing
	if t == nil {
		return nil, nil
	}
	path := "mesh.tracing"
	host, port, ok := splitHostPort(t.Endpoint)
	if !ok {
		b.errorf(CodeInvalidValue, path+".endpoint", "tracing endpoint %q: want host:port", t.Endpoint)
		return nil, nil
	}
	cname := tracingCluster(t.Provider)
	var provider *tracev3.Tracing_Http
	var cluster *Resource
	switch t.Provider {
	case "zipkin":
		cluster = b.hostPortCluster(path, cname, host, port, "", false)
		provider = &tracev3.Tracing_Http{Name: "envoy.tracers.zipkin", ConfigType: &tracev3.Tracing_Http_TypedConfig{
			TypedConfig: b.pack(path, &tracev3.ZipkinConfig{
				CollectorCluster:         cname,
				CollectorEndpoint:        "/api/v2/spans",
				CollectorEndpointVersion: tracev3.ZipkinConfig_HTTP_JSON,
				SharedSpanContext:        wrapperspb.Bool(false),
				TraceId_128Bit:           true,
			}),
		}}
	case "opentelemetry":
		cluster = b.hostPortCluster(path, cname, host, port, "", true)
		provider = &tracev3.Tracing_Http{Name: "envoy.tracers.opentelemetry", ConfigType: &tracev3.Tracing_Http_TypedConfig{
			TypedConfig: b.pack(path, &tracev3.OpenTelemetryConfig{
				GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cname},
				}},
				ServiceName: b.m.Mesh.Name,
				// Each proxy names its own tracing service: the environment
				// detector reads OTEL_RESOURCE_ATTRIBUTES (injection sets
				// service.name=bootstrap.TracingService), and a detected
				// attribute overrides service_name (Envoy's
				// resource_detectors/resource_provider.cc, mergeResource).
				// Without the variable the mesh name stays.
				ResourceDetectors: []*corev3.TypedExtensionConfig{{
					Name:        "envoy.tracers.opentelemetry.resource_detectors.environment",
					TypedConfig: b.pack(path, &resourcedetectorsv3.EnvironmentResourceDetectorConfig{}),
				}},
			}),
		}}
	default:
		b.errorf(CodeUnsupported, path+".provider", "unknown tracing provider %q (want zipkin or opentelemetry)", t.Provider)
		return nil, nil
	}
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: t.Sampling},
		Provider:       provider,
	}, cluster
}

// splitHostPort splits "host:port".
func splitHostPort(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, false
	}
	return strings.Trim(s[:i], "[]"), n, true
}

// hcmSpec describes an HTTP connection manager.
type hcmSpec struct {
	path       string
	statPrefix string
	// rds names the route config to fetch; inline is used when rds is "".
	rds     string
	inline  *routev3.RouteConfiguration
	chain   chain
	tracing bool
}

// hcm renders an HTTP connection manager and returns the clusters its
// filters and tracer need.
func (b *builder) hcm(s hcmSpec) (*hcmv3.HttpConnectionManager, []*Resource) {
	filters, deps := b.httpFilters(s.path, s.chain)
	h := &hcmv3.HttpConnectionManager{
		StatPrefix:  s.statPrefix,
		CodecType:   hcmv3.HttpConnectionManager_AUTO,
		HttpFilters: filters,
	}
	if s.rds != "" {
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: adsSource(), RouteConfigName: s.rds}}
	} else {
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: s.inline}
	}
	if s.tracing {
		t, c := b.tracing()
		if t != nil {
			h.Tracing = t
			deps = append(deps, c)
		}
	}
	return h, deps
}
