package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gitmesh/gitmesh/render/bootstrap"
)

// readSDS decodes an SDS file as Envoy's filesystem subscription does: a
// DiscoveryResponse with one Secret.
func readSDS(t *testing.T, path string) (*tlsv3.Secret, os.FileInfo) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var resp discoveryv3.DiscoveryResponse
	if err := protojson.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("%s is not a DiscoveryResponse: %v", path, err)
	}
	if len(resp.GetResources()) != 1 {
		t.Fatalf("%s: %d resources, want 1", path, len(resp.GetResources()))
	}
	var s tlsv3.Secret
	if err := resp.GetResources()[0].UnmarshalTo(&s); err != nil {
		t.Fatalf("%s: resource is not a Secret: %v", path, err)
	}
	if err := s.ValidateAll(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &s, fi
}

// checkSDSMatchesPEM: the SDS files hold exactly the PEM files' pair and
// bundle.
func checkSDSMatchesPEM(t *testing.T, out string) (chain []byte, certInfo os.FileInfo) {
	t.Helper()
	certSecret, fi := readSDS(t, filepath.Join(out, SDSCertFile))
	caSecret, _ := readSDS(t, filepath.Join(out, SDSCAFile))
	chainPEM, _ := os.ReadFile(filepath.Join(out, CertFile))
	keyPEM, _ := os.ReadFile(filepath.Join(out, KeyFile))
	caPEM, _ := os.ReadFile(filepath.Join(out, CAFile))
	if certSecret.GetName() != bootstrap.SDSCertSecret ||
		!bytes.Equal(certSecret.GetTlsCertificate().GetCertificateChain().GetInlineBytes(), chainPEM) ||
		!bytes.Equal(certSecret.GetTlsCertificate().GetPrivateKey().GetInlineBytes(), keyPEM) {
		t.Errorf("%s does not hold %s and %s as secret %q", SDSCertFile, CertFile, KeyFile, bootstrap.SDSCertSecret)
	}
	if caSecret.GetName() != bootstrap.SDSCASecret || !bytes.Equal(caSecret.GetValidationContext().GetTrustedCa().GetInlineBytes(), caPEM) {
		t.Errorf("%s does not hold %s as secret %q", SDSCAFile, CAFile, bootstrap.SDSCASecret)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600 (it holds the key)", SDSCertFile, fi.Mode().Perm())
	}
	return chainPEM, fi
}

// TestEnvoySDSRotation: in token mode the Envoy bootstrap takes the xDS
// client certificate from file-based SDS, and every renewal renames new
// SDS files into the watched directory (a new inode, not an in-place
// write), so Envoy reloads the certificate instead of keeping the first.
func TestEnvoySDSRotation(t *testing.T) {
	rev := &gatedReviewer{}
	rev.open.Store(true)
	addr, authority := startSigner(t, rev)
	pod := t.TempDir()
	tokenFile, caFile := filepath.Join(pod, "token"), filepath.Join(pod, "root.pem")
	os.WriteFile(tokenFile, []byte("tok"), 0o600)
	os.WriteFile(caFile, authority.TrustBundle(), 0o644)
	out := filepath.Join(pod, "certs")
	envoyBoot := filepath.Join(pod, EnvoyBootstrapFile)
	var written atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{NodeID: "sidecar/ns/reviews/v1/reviews-0", XDSAddress: addr, ServerName: "localhost",
			TokenFile: tokenFile, CAFile: caFile, OutDir: out, BootstrapOut: envoyBoot, CertTTL: 4 * time.Second,
			RetryBase: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond, Logger: logger(t),
			Written: func(*x509.Certificate) { written.Add(1) }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	waitUntil(t, 10*time.Second, "the Envoy bootstrap", func() bool { _, err := os.Stat(envoyBoot); return err == nil })

	raw, err := os.ReadFile(envoyBoot)
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
	certs := common.GetTlsCertificateSdsSecretConfigs()
	if len(common.GetTlsCertificates()) != 0 || len(certs) != 1 ||
		certs[0].GetSdsConfig().GetPathConfigSource().GetPath() != filepath.Join(out, SDSCertFile) ||
		certs[0].GetSdsConfig().GetPathConfigSource().GetWatchedDirectory().GetPath() != out ||
		common.GetValidationContextSdsSecretConfig().GetSdsConfig().GetPathConfigSource().GetPath() != filepath.Join(out, SDSCAFile) {
		t.Fatalf("the xds cluster does not read its certificate from the SDS files in %s:\n%s", out, raw)
	}

	first, firstInfo := checkSDSMatchesPEM(t, out)
	n := written.Load()
	waitUntil(t, 10*time.Second, "a renewal", func() bool { return written.Load() > n })
	// Written runs after the SDS files are written; the next renewal is
	// seconds away, so the files read here are one renewal's.
	second, secondInfo := checkSDSMatchesPEM(t, out)
	if bytes.Equal(first, second) {
		t.Error("the SDS certificate file still holds the first certificate after a renewal")
	}
	if os.SameFile(firstInfo, secondInfo) {
		t.Errorf("%s was rewritten in place; Envoy's watched_directory reloads only on a rename into the directory", SDSCertFile)
	}
}
