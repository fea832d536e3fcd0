package xds

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
)

// fixedReviewer accepts one token as one service account.
type fixedReviewer struct {
	token string
	sa    certsvc.ServiceAccount
}

func (f fixedReviewer) Review(_ context.Context, token string) (certsvc.ServiceAccount, error) {
	if token != f.token {
		return certsvc.ServiceAccount{}, &certsvc.RefusedError{Reason: "unknown token"}
	}
	return f.sa, nil
}

// TestCertlessOnlyForSigning: with the signing service on the xDS port
// the handshake admits a client without a certificate, which may call the
// signing service and nothing else: its ADS stream is refused before any
// response with Unauthenticated, listed and counted as tls-no-certificate.
// A certificate that does not verify still fails the handshake, and a
// verified one is served as before.
func TestCertlessOnlyForSigning(t *testing.T) {
	c, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.New(ca.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := certsvc.New(certsvc.Options{CA: c, Logger: quietLogger(),
		Reviewer:    fixedReviewer{token: "good", sa: certsvc.ServiceAccount{Namespace: "default", Name: "reviews"}},
		TrustDomain: func() (string, bool) { return "cluster.local", true }})
	if err != nil {
		t.Fatal(err)
	}
	s, addr := mtlsServerWith(t, c, Options{
		Credentials: MutualTLSCertOptional(func() (*tls.Certificate, error) { return c.ServingCert([]string{"localhost"}) }, c.TrustPool),
		Services:    signer.Register,
		Certless:    []string{certsvc.CreateCertificateMethod},
	})

	// No certificate: ADS is refused at the stream, before any response.
	noCert := tlsClient(t, addr, nil, "", c.TrustPool())
	err = refused(t, noCert, reviewsClass+"/reviews-0")
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "needs a verified client certificate") {
		t.Errorf("ADS without a certificate: %v, want Unauthenticated", err)
	}
	var found bool
	for _, r := range s.Rejections() {
		if r.Reason == apiv1.ReasonTLSNoCertificate && r.Code == "Unauthenticated" && strings.HasPrefix(r.Peer, "127.0.0.1:") {
			found = true
		}
	}
	if !found {
		t.Errorf("rejections = %+v, want a tls-no-certificate entry", s.Rejections())
	}
	if got := testutil.ToFloat64(s.metrics.rejectedConns.WithLabelValues(apiv1.ReasonTLSNoCertificate)); got < 1 {
		t.Errorf("rejected_connections_total{reason=tls-no-certificate} = %v, want ≥ 1", got)
	}
	if ps := s.Proxies(); len(ps) != 0 {
		t.Errorf("proxies = %+v, want none", ps)
	}

	// The same kind of connection reaches the signing service.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: c.TrustPool(), ServerName: "localhost"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := certsvc.CreateCertificate(ctx, conn, "good", certsvc.Request{CSRPEM: csr, ValiditySeconds: 600})
	if err != nil {
		t.Fatalf("signing without a client certificate: %v", err)
	}
	leaf, err := ca.ParseCerts([]byte(resp.CertChain[0]))
	if err != nil || leaf[0].URIs[0].String() != reviewsID {
		t.Fatalf("issued %v (%v), want %s", resp.CertChain, err, reviewsID)
	}

	// A certificate that does not verify still fails the handshake.
	err = refused(t, forcedCertClient(t, addr, other, c), reviewsClass+"/reviews-0")
	if status.Code(err) != codes.Unavailable {
		t.Errorf("stranger CA: %v, want Unavailable (handshake refused)", err)
	}
	// A verified certificate is served as today.
	p := askSecrets(t, tlsClient(t, addr, c, reviewsID, c.TrustPool()), reviewsClass+"/reviews-0")
	if r := p.next(t, 5*time.Second); len(r.GetResources()) != 1 {
		t.Errorf("reviews over mutual TLS got %d resources, want its secret", len(r.GetResources()))
	}
}

// TestCertlessConnectionsAreLimited: connections without a certificate
// share one identity's connection limit.
func TestCertlessConnectionsAreLimited(t *testing.T) {
	c, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, addr := mtlsServerWith(t, c, Options{MaxConnsPerIdentity: 1,
		Credentials: MutualTLSCertOptional(func() (*tls.Certificate, error) { return c.ServingCert([]string{"localhost"}) }, c.TrustPool),
		Certless:    []string{certsvc.CreateCertificateMethod}})
	dial := func() *tls.Conn {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: c.TrustPool(), ServerName: "localhost", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// The first connection counts once the server has finished its side of
	// the handshake, which under load can come after the client's side of a
	// second handshake: wait for the server's HTTP/2 preface on it first.
	first := dial()
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err != nil {
		t.Fatalf("the first connection without a certificate was not served: %v", err)
	}
	second := dial()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Error("the second connection without a certificate was served")
	}
	found := false
	for _, r := range s.Rejections() {
		found = found || (r.Reason == apiv1.ReasonTooManyConnections && r.Identity == noCertificateIdentity)
	}
	if !found {
		t.Errorf("rejections = %+v, want too-many-connections for %q", s.Rejections(), noCertificateIdentity)
	}
}
