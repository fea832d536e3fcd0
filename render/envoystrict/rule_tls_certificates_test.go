package envoystrict

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
)

func TestRuleTLSCertificates(t *testing.T) {
	sds := func(n string) *tlsv3.SdsSecretConfig { return &tlsv3.SdsSecretConfig{Name: n, SdsConfig: ads()} }
	inline := &tlsv3.TlsCertificate{CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "x"}}}
	san := []*tlsv3.SubjectAltNameMatcher{{SanType: tlsv3.SubjectAltNameMatcher_URI,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "spiffe://cluster.local/ns/a/sa/b"}}}}
	socket := func(m proto.Message) *corev3.TransportSocket {
		return &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, m)}}
	}
	server := func(common *tlsv3.CommonTlsContext) *listenerv3.Listener {
		l := httpListener(t, "l", "0.0.0.0", 80, "r")
		l.FilterChains[0].TransportSocket = socket(&tlsv3.DownstreamTlsContext{CommonTlsContext: common})
		return l
	}
	client := func(common *tlsv3.CommonTlsContext) *clusterv3.Cluster {
		c := edsCluster("c")
		c.TransportSocket = socket(&tlsv3.UpstreamTlsContext{CommonTlsContext: common})
		return c
	}
	combined := func(sans []*tlsv3.SubjectAltNameMatcher, root *tlsv3.SdsSecretConfig) *tlsv3.CommonTlsContext {
		return &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds("default")},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
				ValidationContextSdsSecretConfig: root,
			}},
		}
	}
	runCases(t, []ruleCase{
		{name: "server context without certificates", code: CodeTLS, want: "server TLS context has no certificates",
			own: with(t, server(&tlsv3.CommonTlsContext{}))},
		{name: "server context mixing inline and SDS", code: CodeTLS, want: "mixes inline and SDS",
			own: with(t, server(&tlsv3.CommonTlsContext{TlsCertificates: []*tlsv3.TlsCertificate{inline}, TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds("default")}}))},
		{name: "server context with SDS certificates", own: with(t, server(&tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds("default")}}))},
		{name: "client pins a SAN without a root", code: CodeTLS, want: "without a trusted CA",
			own: with(t, client(&tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
				ValidationContext: &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: san}}}))},
		{name: "combined context pins a SAN without a root", code: CodeTLS, want: "without a trusted CA",
			own: with(t, client(combined(san, nil)))},
		{name: "mesh mTLS: SAN and ROOTCA over SDS", own: with(t, client(combined(san, sds("ROOTCA"))), server(combined(san, sds("ROOTCA"))))},
		{name: "no validation at all is Envoy's to allow", own: with(t, client(&tlsv3.CommonTlsContext{}))},
		{name: "a server context on a cluster", code: CodeInvalidResource, want: "unpack type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
			own: with(t, func() *clusterv3.Cluster {
				c := edsCluster("c")
				c.TransportSocket = socket(&tlsv3.DownstreamTlsContext{CommonTlsContext: combined(san, sds("ROOTCA"))})
				return c
			}())},
	})
}
