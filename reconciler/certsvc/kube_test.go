package certsvc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// signingPort is the signing service as serve runs it: on an xDS server
// whose mutual TLS makes the client certificate optional for this one
// method, checking tokens with the real API server's TokenReview.
func signingPort(t *testing.T, c *kubetest.Cluster, authority *ca.CA) (*certsvc.Server, *grpc.ClientConn) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("CERTSVC_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	signer, err := certsvc.New(certsvc.Options{CA: authority, Reviewer: certsvc.KubeReviewer{Client: c.Client},
		TrustDomain: func() (string, bool) { return "cluster.local", true }, Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := xds.New(xds.Options{Logger: log, ShutdownTimeout: time.Second,
		Credentials: xds.MutualTLSCertOptional(func() (*tls.Certificate, error) { return authority.ServingCert([]string{"localhost"}) }, authority.TrustPool),
		Services:    signer.Register, Certless: []string{certsvc.CreateCertificateMethod}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: authority.TrustPool(), ServerName: "localhost"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return signer, conn
}

func csrPEM(t *testing.T, uris ...string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.CertificateRequest{}
	for _, u := range uris {
		p, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, p)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// forgeToken signs a service-account token with the test API server's own
// signing key, like the API server does, but with any expiry: TokenRequest
// refuses lifetimes under ten minutes, so this is how a test gets an
// expired token that is otherwise valid.
func forgeToken(t *testing.T, c *kubetest.Cluster, sa *corev1.ServiceAccount, exp time.Time) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(c.Dir, "pki", "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	kid := sha256.Sum256(pub)
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": enc.EncodeToString(kid[:])})
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://kubernetes.default.svc.cluster.local", "aud": []string{certsvc.Audience},
		"sub": "system:serviceaccount:" + sa.Namespace + ":" + sa.Name,
		"iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(), "exp": exp.Unix(),
		"kubernetes.io": map[string]any{"namespace": sa.Namespace, "serviceaccount": map[string]string{"name": sa.Name, "uid": string(sa.UID)}},
	})
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

// TestSigningWithServiceAccountTokens is issue 14 item 4's identity
// acceptance against the real API server: A's token buys A's SPIFFE
// certificate, and each of B with A's token, an expired token, a token for
// another audience, no token and a deleted service account's token is
// refused with a clear error, no certificate, and a count.
func TestSigningWithServiceAccountTokens(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	sas := map[string]*corev1.ServiceAccount{}
	for _, name := range []string{"a", "b", "gone"} {
		sas[name] = c.ServiceAccount(t, ns, name)
	}
	authority, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	signer, conn := signingPort(t, c, authority)
	idA := "spiffe://cluster.local/ns/" + ns + "/sa/a"
	idB := "spiffe://cluster.local/ns/" + ns + "/sa/b"
	ask := func(token string, csr string) (certsvc.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return certsvc.CreateCertificate(ctx, conn, token, certsvc.Request{CSRPEM: csr, ValiditySeconds: 600})
	}

	tokenA := c.Token(t, ns, "a", certsvc.Audience)
	for name, csr := range map[string]string{"no SAN": csrPEM(t), "A's own SAN": csrPEM(t, idA)} {
		resp, err := ask(tokenA, csr)
		if err != nil {
			t.Fatalf("A's token, CSR with %s: %v", name, err)
		}
		chain, err := ca.ParseCerts([]byte(strings.Join(resp.CertChain[:len(resp.CertChain)-1], "")))
		if err != nil {
			t.Fatal(err)
		}
		if leaf := chain[0]; len(leaf.URIs) != 1 || leaf.URIs[0].String() != idA || len(leaf.DNSNames) != 0 {
			t.Errorf("A's certificate (CSR with %s) has URIs %v DNS %v, want exactly %s", name, leaf.URIs, leaf.DNSNames, idA)
		}
		if left := time.Until(chain[0].NotAfter); left > 11*time.Minute || left < 9*time.Minute {
			t.Errorf("A's certificate lives %v more, want the 10 minutes asked", left)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: authority.TrustPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("A's certificate does not verify: %v", err)
		}
		if bundle := resp.CertChain[len(resp.CertChain)-1]; bundle != string(authority.TrustBundle()) {
			t.Errorf("last element is not the trust bundle: %q", bundle)
		}
	}
	if got := testutil.ToFloat64(signer.Requests(certsvc.ResultIssued)); got != 2 {
		t.Errorf("issued = %v, want 2", got)
	}

	// Control: a token forged like the API server signs them is accepted
	// while it is current, so the expired one below is refused for its
	// expiry and nothing else.
	if _, err := ask(forgeToken(t, c, sas["a"], time.Now().Add(time.Hour)), csrPEM(t)); err != nil {
		t.Fatalf("a current token signed with the cluster's key: %v", err)
	}

	cases := []struct {
		name, token, csr string
		code             codes.Code
		says             string
		result           string
	}{
		{"B with A's token", tokenA, csrPEM(t, idB), codes.PermissionDenied, `the CSR asks for "` + idB + `" but the token is service account "a"`, certsvc.ResultPermissionDenied},
		{"expired token", forgeToken(t, c, sas["a"], time.Now().Add(-time.Hour)), csrPEM(t), codes.Unauthenticated, "expired", certsvc.ResultUnauthenticated},
		{"wrong audience", c.Token(t, ns, "a", "other"), csrPEM(t), codes.Unauthenticated, "audience", certsvc.ResultUnauthenticated},
		{"API server audience", c.Token(t, ns, "a"), csrPEM(t), codes.Unauthenticated, "audience", certsvc.ResultUnauthenticated},
		{"no token", "", csrPEM(t), codes.Unauthenticated, "no service-account token", certsvc.ResultUnauthenticated},
		{"garbage token", "not-a-jwt", csrPEM(t), codes.Unauthenticated, "service-account token refused", certsvc.ResultUnauthenticated},
	}
	for _, tc := range cases {
		before := testutil.ToFloat64(signer.Requests(tc.result))
		resp, err := ask(tc.token, tc.csr)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %v saying %q", tc.name, err, tc.code, tc.says)
		}
		if len(resp.CertChain) != 0 {
			t.Errorf("%s: got a certificate", tc.name)
		}
		if got := testutil.ToFloat64(signer.Requests(tc.result)); got != before+1 {
			t.Errorf("%s: %s count %v → %v, want +1", tc.name, tc.result, before, got)
		}
		t.Logf("%s: %v", tc.name, err)
	}

	// A deleted service account stops getting certificates: its token,
	// good a moment ago, is refused.
	tokenGone := c.Token(t, ns, "gone", certsvc.Audience)
	if _, err := ask(tokenGone, csrPEM(t)); err != nil {
		t.Fatalf("gone's token before the deletion: %v", err)
	}
	if err := c.Client.CoreV1().ServiceAccounts(ns).Delete(context.Background(), "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := ask(tokenGone, csrPEM(t))
		if status.Code(err) == codes.Unauthenticated {
			t.Logf("deleted service account: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a deleted service account's token still buys certificates after 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
