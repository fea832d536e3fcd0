package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Secrets returns the secrets plan: for every class, the SDS secrets the
// resources render emitted name, by name. Every class gets ROOTCA (the
// trust bundle) and `default` issued for its Identity; a gateway class gets
// each credentialName its terminating listeners use, and NAME-cacert for a
// MUTUAL one. The reconciler supplies the PEM bytes (Secret builds them), so
// the names a listener asks for and the names served come from one rule.
// The map is the bundle's: callers must not modify it.
func (b *Bundle) Secrets() map[string]snapshot.ClassSecrets { return b.secrets }

// planSecrets fills the bundle's secrets plan once every class is built.
func (b *builder) planSecrets() {
	classes := b.bundle.classes
	plan := make(map[string]snapshot.ClassSecrets, len(classes))
	ids := map[string]string{} // intern: 10,000 classes share few strings
	for _, class := range classes {
		// One parse per class (Identity would parse it again).
		c, err := nodeid.ParseClass(class)
		if err != nil {
			b.errorf(CodeInvalidValue, "", "%v", fmt.Errorf("identity of %w", err))
			continue
		}
		id, err := identityOf(b.m, class, c)
		if err != nil {
			b.errorf(CodeInvalidValue, "", "%v", err)
			continue
		}
		if v, ok := ids[id]; ok {
			id = v
		} else {
			ids[id] = id
		}
		cs := snapshot.ClassSecrets{Identity: id}
		if (c.Kind == KindIngress || c.Kind == KindEgress) && b.m.Gateways[c.Gateway] != nil {
			g := b.m.Gateways[c.Gateway]
			cs.Credentials = gatewayCredentials(g)
		}
		plan[class] = cs
	}
	b.bundle.secrets = plan
}

// gatewayCredentials lists the SDS names a gateway's listeners use, sorted:
// each credentialName of a terminating listener, and NAME-cacert for a
// MUTUAL one (tls.go names them the same way).
func gatewayCredentials(g *model.Gateway) []string {
	var out []string
	for _, l := range g.Listeners {
		if l.TLS == nil || l.TLS.CredentialName == "" || l.TLS.Mode == model.TLSPassthrough {
			continue
		}
		out = append(out, l.TLS.CredentialName)
		if l.TLS.Mode == model.TLSMutual {
			out = append(out, CACertSecret(l.TLS.CredentialName))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CACertSuffix ends the SDS name of a MUTUAL credential's client CA.
const CACertSuffix = "-cacert"

// CACertSecret is the SDS name of a MUTUAL credential's client CA.
func CACertSecret(credential string) string { return credential + CACertSuffix }

// SecretPEM is the key material of one SDS secret, in PEM. Set CertChain
// and Key for a certificate (a workload's `default`, a gateway credential),
// or TrustedCA for a validation context (ROOTCA, NAME-cacert).
type SecretPEM struct {
	CertChain, Key []byte
	TrustedCA      []byte
}

// Secret builds the SDS secret name from pem, marshalled deterministically
// and versioned by a hash of its content, as every rendered resource is: a
// re-issued certificate is a new version, an unchanged one is not. It is
// the one place gitmesh builds Secret protos; it is pure, so the reconciler
// only supplies the bytes (from its CA and the credentials dir).
func Secret(name string, pem SecretPEM) (*snapshot.Resource, error) {
	sec := &tlsv3.Secret{Name: name}
	switch {
	case len(pem.TrustedCA) > 0 && (len(pem.CertChain) > 0 || len(pem.Key) > 0):
		return nil, fmt.Errorf("secret %q: either a certificate and key or a trusted CA, not both", name)
	case len(pem.TrustedCA) > 0:
		sec.Type = &tlsv3.Secret_ValidationContext{
			ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inlineBytes(pem.TrustedCA)},
		}
	case len(pem.CertChain) > 0 || len(pem.Key) > 0:
		sec.Type = &tlsv3.Secret_TlsCertificate{
			TlsCertificate: &tlsv3.TlsCertificate{CertificateChain: inlineBytes(pem.CertChain), PrivateKey: inlineBytes(pem.Key)},
		}
	default:
		return nil, fmt.Errorf("secret %q: no certificate and key and no trusted CA", name)
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(sec)
	if err != nil {
		return nil, fmt.Errorf("marshal secret %q: %w", name, err)
	}
	sum := sha256.Sum256(raw)
	return &snapshot.Resource{Name: name, Version: hex.EncodeToString(sum[:8]), Any: &anypb.Any{TypeUrl: snapshot.SecretType, Value: raw}}, nil
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}
