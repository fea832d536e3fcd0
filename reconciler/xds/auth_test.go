package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/render"
)

const (
	reviewsClass = "sidecar/default/reviews/v1"
	ratingsClass = "sidecar/default/ratings/v1"
	reviewsID    = "spiffe://cluster.local/ns/default/sa/reviews"
	ratingsID    = "spiffe://cluster.local/ns/default/sa/ratings"
)

// mtlsServer serves two sidecar classes, each with its own `default`
// secret, on a loopback port that requires mutual TLS with certificates of
// c, admitting streams by identity.
func mtlsServer(t *testing.T, c *ca.CA) (*Server, string) {
	t.Helper()
	return mtlsServerLog(t, c, quietLogger())
}

// mtlsServerLog is mtlsServer logging to log.
func mtlsServerLog(t *testing.T, c *ca.CA, log *slog.Logger) (*Server, string) {
	t.Helper()
	return mtlsServerWith(t, c, Options{Logger: log})
}

// mtlsServerWith is mtlsServer with opts (Logger, limits) as the base.
func mtlsServerWith(t *testing.T, c *ca.CA, opts Options) (*Server, string) {
	t.Helper()
	ids := map[string]string{reviewsClass: reviewsID, ratingsClass: ratingsID}
	opts.ShutdownTimeout = 2 * time.Second
	opts.Authorize = AuthorizeIdentity(func(class string) (string, bool) { id, ok := ids[class]; return id, ok })
	if opts.Credentials == nil {
		opts.Credentials = MutualTLS(
			func() (*tls.Certificate, error) { return c.ServingCert([]string{"localhost"}) },
			c.TrustPool)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	u := Update{Revision: "r1", Classes: map[string]*ClassConfig{}}
	for class, id := range ids {
		is, err := c.Issue(id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := render.Secret(render.SecretDefault, render.SecretPEM{CertChain: is.CertPEM, Key: is.KeyPEM})
		if err != nil {
			t.Fatal(err)
		}
		u.Classes[class] = &ClassConfig{Resources: map[string][]*Resource{resource.SecretType: {sec}}}
	}
	if err := s.Apply(u); err != nil {
		t.Fatal(err)
	}
	return s, startServer(t, s)
}

// tlsClient dials addr presenting the certificate issued for id by c (no
// certificate when c is nil), trusting roots.
func tlsClient(t *testing.T, addr string, c *ca.CA, id string, roots *x509.CertPool) discovery.AggregatedDiscoveryServiceClient {
	t.Helper()
	return discovery.NewAggregatedDiscoveryServiceClient(tlsConn(t, addr, c, id, roots))
}

// tlsConn is tlsClient's connection, for tests that close it themselves.
func tlsConn(t *testing.T, addr string, c *ca.CA, id string, roots *x509.CertPool) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if c != nil {
		is, err := c.Issue(id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// askSecrets opens an ADS stream as node and asks for its `default` secret.
func askSecrets(t *testing.T, client discovery.AggregatedDiscoveryServiceClient, node string) *pump[*discovery.DiscoveryResponse] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	stream, err := client.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: resource.SecretType, ResourceNames: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	return startPump(stream.Recv)
}

// refused opens a stream as node and returns the error it ends with,
// wherever it surfaces (open, send or receive).
func refused(t *testing.T, client discovery.AggregatedDiscoveryServiceClient, node string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := client.StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: resource.SecretType}); err != nil {
		_, err = stream.Recv() // the real status is on the receive side
		return err
	}
	resp, err := stream.Recv()
	if err == nil {
		t.Errorf("node %s received %d secrets", node, len(resp.GetResources()))
	}
	return err
}

// TestAdmissionByIdentity is issue 5's impersonation acceptance, at the
// xDS server: a client holding reviews' certificate that claims a ratings
// node is refused with PermissionDenied before any secret is sent, and the
// refusal is recorded; the same client as its own node gets its own key.
func TestAdmissionByIdentity(t *testing.T) {
	c, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, addr := mtlsServer(t, c)
	reviews := tlsClient(t, addr, c, reviewsID, c.TrustPool())

	err = askSecrets(t, reviews, ratingsClass+"/ratings-0").fail(t, 5*time.Second)
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("reviews asking for ratings: %v, want PermissionDenied", err)
	}
	want := `node "sidecar/default/ratings/v1/ratings-0" claims class "sidecar/default/ratings/v1" whose identity is "` + ratingsID + `", but the client certificate is "` + reviewsID + `"`
	if got := status.Convert(err).Message(); got != want {
		t.Errorf("refusal:\n got %s\nwant %s", got, want)
	}
	rej := s.Rejections()
	if len(rej) != 1 || rej[0].Code != "PermissionDenied" || rej[0].Identity != reviewsID || rej[0].NodeID != ratingsClass+"/ratings-0" {
		t.Errorf("rejections = %+v, want one PermissionDenied for reviews claiming ratings", rej)
	}
	for _, p := range s.Proxies() {
		if p.NodeID == ratingsClass+"/ratings-0" {
			t.Errorf("refused node listed as a proxy with %+v", p.Types)
		}
	}

	resp := askSecrets(t, reviews, reviewsClass+"/reviews-0").next(t, 5*time.Second)
	if len(resp.GetResources()) != 1 {
		t.Fatalf("reviews got %d secrets, want its own", len(resp.GetResources()))
	}
	var sec tlsv3.Secret
	if err := resp.GetResources()[0].UnmarshalTo(&sec); err != nil {
		t.Fatal(err)
	}
	chain, _ := ca.ParseCerts(sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	if len(chain) == 0 || chain[0].URIs[0].String() != reviewsID {
		t.Errorf("reviews received a certificate for %v", chain[0].URIs)
	}
}

// TestMutualTLSRefusesStrangers: no client certificate, or one from another
// CA, does not get past the handshake.
func TestMutualTLSRefusesStrangers(t *testing.T) {
	c, err := ca.New(ca.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.New(ca.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := mtlsServer(t, c)
	for name, client := range map[string]discovery.AggregatedDiscoveryServiceClient{
		"no client certificate":        tlsClient(t, addr, nil, "", c.TrustPool()),
		"certificate of a stranger CA": tlsClient(t, addr, other, reviewsID, c.TrustPool()),
	} {
		err := refused(t, client, reviewsClass+"/reviews-0")
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: %v, want Unavailable (handshake refused)", name, err)
		}
	}
	// Plain text is refused too.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	conn.Close()
	if strings.Contains(string(buf[:n]), "PRI") {
		t.Error("plain HTTP/2 got an answer")
	}
}
