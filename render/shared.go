package render

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Sub-messages that are the same wherever they appear: the router and
// empty fault HTTP filters, the original_dst and tls_inspector listener
// filters, the mesh's downstream mTLS socket. Every sidecar's
// virtualInbound and every HCM carries them, so at 1,000 services packing
// (validate, marshal) each one afresh was tens of thousands of
// allocations per render. Rendered protos are immutable once built, so
// these are built once per Render and shared by pointer, as adsSource is.
// They carry no model path: their content does not depend on the model,
// so their validation cannot fail because of it.
type fixedParts struct {
	router      *hcmv3.HttpFilter
	fault       *hcmv3.HttpFilter
	originalDst *listenerv3.ListenerFilter
	tlsInspect  *listenerv3.ListenerFilter
	// downTLS is meshDownstreamTLS by require (index 1: required).
	downTLS [2]*corev3.TransportSocket
	// allowAny is the ALLOW_ANY virtual host of outbound route configs.
	allowAny *routev3.VirtualHost
	// virtualOutbound is the outbound capture listener (one per mesh).
	virtualOutbound *Resource
	// upstreamHTTP is the HttpProtocolOptions of a cluster without
	// connection pool limits, by h2 (index 1: HTTP/2).
	upstreamHTTP [2]*anypb.Any
}

// routerFilter is the terminal router HTTP filter.
func (b *builder) routerFilter() *hcmv3.HttpFilter {
	if b.fixed.router == nil {
		b.fixed.router = &hcmv3.HttpFilter{Name: filterRouter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: b.pack("", &routerv3.Router{})}}
	}
	return b.fixed.router
}

// faultFilter is the fault HTTP filter with no fault of its own: routes
// configure it per filter.
func (b *builder) faultFilter() *hcmv3.HttpFilter {
	if b.fixed.fault == nil {
		b.fixed.fault = &hcmv3.HttpFilter{Name: filterFault, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: b.pack("", &faultv3.HTTPFault{})}}
	}
	return b.fixed.fault
}

// originalDstFilter restores a redirected connection's destination.
func (b *builder) originalDstFilter() *listenerv3.ListenerFilter {
	if b.fixed.originalDst == nil {
		b.fixed.originalDst = &listenerv3.ListenerFilter{
			Name:       listenerOriginalDst,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: b.pack("", &originaldstv3.OriginalDst{})},
		}
	}
	return b.fixed.originalDst
}

// tlsInspector reads SNI and tells TLS from plain text, for filter chains
// that match on server names or transport protocol.
func (b *builder) tlsInspector() *listenerv3.ListenerFilter {
	if b.fixed.tlsInspect == nil {
		b.fixed.tlsInspect = &listenerv3.ListenerFilter{
			Name:       listenerTLSInspector,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: b.pack("", &tlsinspectorv3.TlsInspector{})},
		}
	}
	return b.fixed.tlsInspect
}

// meshDownstreamTLS is an Envoy's server side of mesh mTLS; require says
// whether a client certificate is mandatory (STRICT). It takes no model
// path: the context does not depend on the model.
func (b *builder) meshDownstreamTLS(require bool) *corev3.TransportSocket {
	i := 0
	if require {
		i = 1
	}
	if b.fixed.downTLS[i] == nil {
		b.fixed.downTLS[i] = b.transportSocket("", &tlsv3.DownstreamTlsContext{
			CommonTlsContext:         b.meshCommonTLS(""),
			RequireClientCertificate: wrapperspb.Bool(require),
		})
	}
	return b.fixed.downTLS[i]
}
