package render

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// TLS contexts. Envoy proxies get their keys by SDS under two fixed names
// ("default" for the workload certificate, "ROOTCA" for the trust bundle),
// exactly as Istio's agent serves them, so the reconciler's SDS server has one
// naming rule for every proxy. Proxyless gRPC cannot use SDS: grpc-go takes
// certificates only from certificate provider plugin instances named in its
// bootstrap, so those contexts name the instance "default" instead.

// systemCAs is where TLS origination to external hosts finds public roots.
const systemCAs = "/etc/ssl/certs/ca-certificates.crt"

// meshALPN is offered on mesh mTLS so HTTP/2 works end to end.
var meshALPN = []string{"h2", "http/1.1"}

func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsSource()}
}

// transportSocket wraps a TLS context as the tls transport socket.
func (b *builder) transportSocket(path string, ctx proto.Message) *corev3.TransportSocket {
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: b.pack(path, ctx)},
	}
}

// spiffeSAN matches a peer certificate's URI SAN exactly.
func spiffeSAN(id string) *tlsv3.SubjectAltNameMatcher {
	return &tlsv3.SubjectAltNameMatcher{
		SanType: tlsv3.SubjectAltNameMatcher_URI,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}},
	}
}

// meshCommonTLS is an Envoy's own identity and the mesh roots by SDS, with
// the peer identity to accept ("" for any mesh identity). It depends only on
// the peer, so it is built once per peer and shared (read-only) by every
// cluster to that peer's ports and versions.
func (b *builder) meshCommonTLS(peer string) *tlsv3.CommonTlsContext {
	if c, ok := b.commonTLS[peer]; ok {
		return c
	}
	def := &tlsv3.CertificateValidationContext{}
	if peer != "" {
		def.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{spiffeSAN(peer)}
	}
	c := &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(SecretDefault)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         def,
				ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
			},
		},
		AlpnProtocols: meshALPN,
	}
	b.commonTLS[peer] = c
	return c
}

// meshUpstreamTLS is an Envoy's mTLS to a mesh workload (or gateway) whose
// identity is peer.
func (b *builder) meshUpstreamTLS(path, sni, peer string) *corev3.TransportSocket {
	return b.transportSocket(path, &tlsv3.UpstreamTlsContext{CommonTlsContext: b.meshCommonTLS(peer), Sni: sni})
}

// grpcProvider names the proxyless certificate provider instance.
func grpcProvider() *tlsv3.CertificateProviderPluginInstance {
	return &tlsv3.CertificateProviderPluginInstance{InstanceName: CertProviderInstance}
}

// grpcUpstreamTLS is a proxyless client's mTLS to a workload whose identity
// is peer. grpc-go reads match_subject_alt_names (not the typed variant)
// and ignores the SNI.
func (b *builder) grpcUpstreamTLS(path, peer string) *corev3.TransportSocket {
	return b.transportSocket(path, &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance: grpcProvider(),
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			CaCertificateProviderInstance: grpcProvider(),
			MatchSubjectAltNames: []*matcherv3.StringMatcher{
				{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: peer}},
			},
		}},
	}})
}

// grpcDownstreamTLS is a proxyless server's TLS. grpc-go refuses SAN
// matchers on the server side; who may call is RBAC's job.
func (b *builder) grpcDownstreamTLS(path string, require bool) *corev3.TransportSocket {
	return b.transportSocket(path, &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateProviderInstance: grpcProvider(),
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				CaCertificateProviderInstance: grpcProvider(),
			}},
		},
		RequireClientCertificate: wrapperspb.Bool(require),
	})
}

// gatewayDownstreamTLS terminates TLS for outside clients with the
// listener's credential by SDS; MUTUAL also validates client certificates
// against CREDENTIAL-cacert, Istio's naming for the client CA.
func (b *builder) gatewayDownstreamTLS(path string, t *model.GatewayTLS) *corev3.TransportSocket {
	common := &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(t.CredentialName)},
		AlpnProtocols:                  meshALPN,
	}
	switch t.MinVersion {
	case "1.2":
		common.TlsParams = &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2}
	case "1.3":
		common.TlsParams = &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3}
	}
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
	if t.Mode == model.TLSMutual {
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: sdsSecret(CACertSecret(t.CredentialName)),
		}
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
	}
	return b.transportSocket(path, ctx)
}

// originationTLS starts TLS towards an external host on behalf of a client
// that speaks plain text (Istio's DestinationRule tls.mode SIMPLE), checking
// the server's name against the public roots.
func (b *builder) originationTLS(path, sni string) *corev3.TransportSocket {
	return b.transportSocket(path, &tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: systemCAs}},
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_DNS,
					Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: sni}},
				}},
			}},
		},
	})
}
