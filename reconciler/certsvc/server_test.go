package certsvc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gitmesh/gitmesh/reconciler/ca"
)

type oneToken struct{}

func (oneToken) Review(_ context.Context, token string) (ServiceAccount, error) {
	if token != "good" {
		return ServiceAccount{}, &RefusedError{Reason: "unknown token"}
	}
	return ServiceAccount{Namespace: "ns", Name: "sa"}, nil
}

func newTestServer(t *testing.T, rps float64, loaded bool) *Server {
	t.Helper()
	c, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{CA: c, Reviewer: oneToken{}, ReviewsPerSecond: rps,
		TrustDomain: func() (string, bool) { return "cluster.local", loaded },
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func withToken(v string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", v))
}

func goodCSR(t *testing.T) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestRefusals covers what needs no API server: malformed metadata and
// CSRs, no mesh yet, the lifetime bounds and the TokenReview rate.
func TestRefusals(t *testing.T) {
	s := newTestServer(t, 1000, true)
	b, _ := pem.Decode([]byte(goodCSR(t)))
	b.Bytes[len(b.Bytes)-1] ^= 0xff // the signature's last byte
	tamper := string(pem.EncodeToMemory(b))
	for name, tc := range map[string]struct {
		ctx  context.Context
		req  Request
		code codes.Code
		says string
	}{
		"basic auth":    {withToken("Basic Zm9v"), Request{CSRPEM: goodCSR(t)}, codes.Unauthenticated, `not "Bearer TOKEN"`},
		"unknown token": {withToken("Bearer nope"), Request{CSRPEM: goodCSR(t)}, codes.Unauthenticated, "unknown token"},
		"not a CSR":     {withToken("Bearer good"), Request{CSRPEM: "hello"}, codes.InvalidArgument, "no PEM CERTIFICATE REQUEST"},
		"tampered CSR":  {withToken("Bearer good"), Request{CSRPEM: tamper}, codes.InvalidArgument, "csr:"},
		"negative":      {withToken("Bearer good"), Request{CSRPEM: goodCSR(t), ValiditySeconds: -1}, codes.InvalidArgument, "must not be negative"},
		"huge CSR":      {withToken("Bearer good"), Request{CSRPEM: strings.Repeat("x", 20000)}, codes.InvalidArgument, "more than"},
	} {
		resp, err := s.CreateCertificate(tc.ctx, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) || len(resp.CertChain) != 0 {
			t.Errorf("%s: %v (%d PEMs), want %v saying %q", name, err, len(resp.CertChain), tc.code, tc.says)
		}
	}
	// The lifetime asked is capped by the CA's workload TTL.
	resp, err := s.CreateCertificate(withToken("Bearer good"), Request{CSRPEM: goodCSR(t), ValiditySeconds: 10 * 365 * 24 * 3600})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := ca.ParseCerts([]byte(resp.CertChain[0]))
	if life := leaf[0].NotAfter.Sub(leaf[0].NotBefore); life > ca.DefaultWorkloadTTL+2*60e9 {
		t.Errorf("asked ten years, got %v", life)
	}

	if _, err := newTestServer(t, 1000, false).CreateCertificate(withToken("Bearer good"), Request{CSRPEM: goodCSR(t)}); status.Code(err) != codes.Unavailable {
		t.Errorf("no mesh loaded: %v, want Unavailable", err)
	}

	slow := newTestServer(t, 0.001, true) // a burst of 1, then nothing
	codesSeen := map[codes.Code]int{}
	for range 5 {
		_, err := slow.CreateCertificate(withToken("Bearer good"), Request{CSRPEM: goodCSR(t)})
		codesSeen[status.Code(err)]++
	}
	if codesSeen[codes.OK] != 1 || codesSeen[codes.ResourceExhausted] != 4 {
		t.Errorf("5 requests at a rate of 0.001/s: %v, want 1 OK and 4 ResourceExhausted", codesSeen)
	}
	if got := testutil.ToFloat64(slow.Requests(ResultThrottled)); got != 4 {
		t.Errorf("throttled = %v, want 4", got)
	}
}

// TestRefusalLogsAreBounded: a flood of refusals is counted in full but
// logged a few times, with the number left out.
func TestRefusalLogsAreBounded(t *testing.T) {
	c, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	s, err := New(Options{CA: c, Reviewer: oneToken{}, TrustDomain: func() (string, bool) { return "cluster.local", true },
		Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		s.CreateCertificate(context.Background(), Request{})
	}
	s.logs = rate.NewLimiter(10, 1) // room for one more line, carrying the count
	s.CreateCertificate(context.Background(), Request{})
	if got := testutil.ToFloat64(s.Requests(ResultUnauthenticated)); got != 201 {
		t.Errorf("counted %v refusals, want 201", got)
	}
	lines := strings.Count(buf.String(), "certificate request refused")
	if lines > 25 || !strings.Contains(buf.String(), "other_refusals_not_logged=") {
		t.Errorf("%d log lines for 201 refusals, want at most ~21 and a count of the rest:\n%s", lines, buf.String())
	}
}
