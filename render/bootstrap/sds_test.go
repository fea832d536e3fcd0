package bootstrap

import (
	"bytes"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestSDSBootstrap: with SDS the xDS cluster's TLS context names both
// secrets, each from its file with the certificate directory watched, and
// carries no file DataSource Envoy would read only once.
func TestSDSBootstrap(t *testing.T) {
	f := &SDSFiles{CertFile: "/run/certs/xds-cert.json", CAFile: "/run/certs/xds-ca.json", Dir: "/run/certs"}
	raw, err := Envoy(Options{NodeID: "sidecar/default/reviews/v2/pod", XDSAddress: "gitmesh:15010", SDS: f,
		TLS: &TLSFiles{CertFile: "c", KeyFile: "k", CAFile: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	var up tlsv3.UpstreamTlsContext
	if err := b.GetStaticResources().GetClusters()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
		t.Fatal(err)
	}
	common := up.GetCommonTlsContext()
	if len(common.GetTlsCertificates()) != 0 || common.GetValidationContext() != nil {
		t.Errorf("SDS bootstrap still has file certificates: %v", common)
	}
	certs := common.GetTlsCertificateSdsSecretConfigs()
	if len(certs) != 1 || certs[0].GetName() != SDSCertSecret ||
		certs[0].GetSdsConfig().GetPathConfigSource().GetPath() != f.CertFile ||
		certs[0].GetSdsConfig().GetPathConfigSource().GetWatchedDirectory().GetPath() != f.Dir {
		t.Errorf("certificate SDS config = %v", certs)
	}
	vc := common.GetValidationContextSdsSecretConfig()
	if vc.GetName() != SDSCASecret || vc.GetSdsConfig().GetPathConfigSource().GetPath() != f.CAFile ||
		vc.GetSdsConfig().GetPathConfigSource().GetWatchedDirectory().GetPath() != f.Dir {
		t.Errorf("validation SDS config = %v", vc)
	}
	if up.GetSni() != "gitmesh" {
		t.Errorf("sni = %q", up.GetSni())
	}

	if _, err := Envoy(Options{NodeID: "sidecar/default/reviews/v2/pod", XDSAddress: "gitmesh:15010", SDS: &SDSFiles{CertFile: "x"}}); err == nil {
		t.Error("SDS files without a CA file and a directory were accepted")
	}
}

// decodeSDS reads an SDS file the way Envoy's filesystem subscription
// does: a DiscoveryResponse whose one resource is a Secret.
func decodeSDS(t *testing.T, raw []byte) *tlsv3.Secret {
	t.Helper()
	var resp discoveryv3.DiscoveryResponse
	if err := protojson.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("not a DiscoveryResponse: %v\n%s", err, raw)
	}
	if len(resp.GetResources()) != 1 {
		t.Fatalf("%d resources, want 1", len(resp.GetResources()))
	}
	var s tlsv3.Secret
	if err := resp.GetResources()[0].UnmarshalTo(&s); err != nil {
		t.Fatalf("resource is not a Secret: %v", err)
	}
	if err := s.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestSDSFiles(t *testing.T) {
	chain, key, ca := []byte("-----BEGIN CERTIFICATE-----\nchain\n"), []byte("-----BEGIN PRIVATE KEY-----\nkey\n"), []byte("-----BEGIN CERTIFICATE-----\nroot\n")
	raw, err := SDSCertificate(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	s := decodeSDS(t, raw)
	if s.GetName() != SDSCertSecret || !bytes.Equal(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes(), chain) ||
		!bytes.Equal(s.GetTlsCertificate().GetPrivateKey().GetInlineBytes(), key) {
		t.Errorf("certificate secret = %v", s)
	}
	raw, err = SDSValidation(ca)
	if err != nil {
		t.Fatal(err)
	}
	s = decodeSDS(t, raw)
	if s.GetName() != SDSCASecret || !bytes.Equal(s.GetValidationContext().GetTrustedCa().GetInlineBytes(), ca) {
		t.Errorf("validation secret = %v", s)
	}
	if _, err := SDSCertificate(chain, nil); err == nil {
		t.Error("a certificate secret without a key was accepted")
	}
	if _, err := SDSValidation(nil); err == nil {
		t.Error("an empty CA secret was accepted")
	}
}
