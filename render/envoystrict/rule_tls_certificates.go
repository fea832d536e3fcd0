package envoystrict

import (
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// Rule: TLS contexts Envoy can build.
//
// A server (downstream) context needs certificates: ServerContextConfigImpl
// (source/common/tls/server_context_config_impl.cc) throws "No TLS
// certificates found for server context" when tls_certificates and
// tls_certificate_sds_secret_configs are both empty, and "SDS and non-SDS
// TLS certificates may not be mixed in server contexts" when both are set.
//
// A validation context that matches subject alt names needs a trust
// anchor to check them against: DefaultCertValidator
// (source/common/tls/cert_validator/default_validator.cc, the
// constructor / initializeSslContexts) refuses "SAN-based verification of
// peer certificates without trusted CA is insecure and not allowed". For
// mesh mTLS that is the upstream context's validation: a client that
// pins a SPIFFE id must also name the root it trusts (ROOTCA over SDS).
//
// A transport socket's typed_config must be the context of its side:
// Envoy looks the factory up by type URL among upstream or downstream
// transport sockets (Config::Utility::getAndCheckFactory,
// source/common/config/utility.h: "Didn't find a registered implementation
// for '{}' with type URL: '{}'"); here a DownstreamTlsContext on a cluster
// (or the reverse) fails to open as the context expected (GM0802).
//
// The SDS names themselves are rule_references.go's.

// downstreamTLS checks a filter chain's server TLS context.
func (w *walk) downstreamTLS(fc *listenerv3.FilterChain) {
	a := fc.GetTransportSocket().GetTypedConfig()
	if a == nil {
		return
	}
	d, ok := open(w, a, newOf[tlsv3.DownstreamTlsContext])
	if !ok {
		return
	}
	common := d.GetCommonTlsContext()
	w.secretNames(common)
	inline, sds := len(common.GetTlsCertificates()), len(common.GetTlsCertificateSdsSecretConfigs())
	switch {
	case inline+sds == 0 && common.GetTlsCertificateProviderInstance() == nil && common.GetCustomTlsCertificateSelector() == nil:
		w.errorf(CodeTLS, "filter chain %q: server TLS context has no certificates", fc.Name)
	case inline > 0 && sds > 0:
		w.errorf(CodeTLS, "filter chain %q: server TLS context mixes inline and SDS certificates", fc.Name)
	}
	w.validationTrust(common, fc)
}

// upstreamTLS checks a cluster's client TLS context.
func (w *walk) upstreamTLS(c *clusterv3.Cluster) {
	a := c.GetTransportSocket().GetTypedConfig()
	if a == nil {
		return
	}
	u, ok := open(w, a, newOf[tlsv3.UpstreamTlsContext])
	if !ok {
		return
	}
	w.secretNames(u.GetCommonTlsContext())
	w.validationTrust(u.GetCommonTlsContext(), nil)
}

// validationTrust checks that SAN matching comes with a trust anchor, in
// a filter chain's server context (fc) or a cluster's client context (fc
// nil).
func (w *walk) validationTrust(common *tlsv3.CommonTlsContext, fc *listenerv3.FilterChain) {
	var vc *tlsv3.CertificateValidationContext
	sdsTrust := common.GetValidationContextSdsSecretConfig() != nil
	switch {
	case common.GetValidationContext() != nil:
		vc = common.GetValidationContext()
	case common.GetCombinedValidationContext() != nil:
		cv := common.GetCombinedValidationContext()
		vc = cv.GetDefaultValidationContext()
		sdsTrust = sdsTrust || cv.GetValidationContextSdsSecretConfig() != nil || cv.GetValidationContextCertificateProviderInstance() != nil
	}
	if vc == nil {
		return
	}
	//nolint:staticcheck // match_subject_alt_names is deprecated but still honoured by Envoy.
	sans := len(vc.GetMatchTypedSubjectAltNames()) + len(vc.GetMatchSubjectAltNames())
	trust := sdsTrust || vc.GetTrustedCa() != nil || vc.GetCaCertificateProviderInstance() != nil || vc.GetCustomValidatorConfig() != nil
	if sans > 0 && !trust {
		where := "upstream TLS"
		if fc != nil {
			where = "filter chain " + strconv.Quote(fc.Name)
		}
		w.errorf(CodeTLS, "%s: subject alt names are matched without a trusted CA", where)
	}
}
