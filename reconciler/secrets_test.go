package reconciler

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// credentialDir writes a self-signed server credential for host under
// DIR/name, laid out like a mounted Kubernetes TLS Secret.
func credentialDir(t *testing.T, name, host string) string {
	t.Helper()
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.MkdirAll(filepath.Join(dir, name), 0o700)
	os.WriteFile(filepath.Join(dir, name, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, name, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return dir
}

// secretsHarness reconciles examples/bookinfo (STRICT mTLS, an ingress
// gateway with a credential) with a real CA and serves it on loopback.
type secretsHarness struct {
	*harness
	clk   *clock
	ca    *ca.CA
	creds string
	addr  string
}

const bookinfoTTL = time.Hour

func newSecretsHarness(t *testing.T) *secretsHarness {
	t.Helper()
	h := &secretsHarness{harness: &harness{t: t, dir: filepath.Join(t.TempDir(), "mesh"), stateDir: t.TempDir()}}
	copyDir(t, filepath.Join("..", "examples", "bookinfo"), h.dir)
	h.clk = &clock{now: time.Now()}
	h.creds = credentialDir(t, "bookinfo-credential", "bookinfo.example.com")
	var err error
	if h.ca, err = ca.New(ca.Options{TrustDomain: "cluster.local", Dir: filepath.Join(h.stateDir, "ca"), Now: h.clk.Now}); err != nil {
		t.Fatal(err)
	}
	h.srv, h.rec = h.build()
	h.addr = serveXDS(t, h.srv)
	return h
}

func (h *secretsHarness) build() (*xds.Server, *Reconciler) {
	src, err := source.NewDir(source.DirOptions{Dir: h.dir})
	if err != nil {
		h.t.Fatal(err)
	}
	srv, err := xds.New(xds.Options{Logger: quiet, ShutdownTimeout: time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	rec, err := New(Options{Source: src, Server: srv, StateDir: h.stateDir, Logger: quiet, Interval: time.Hour, Now: h.clk.Now,
		CA: h.ca, WorkloadTTL: bookinfoTTL, Credentials: CredentialDir{Dir: h.creds}})
	if err != nil {
		h.t.Fatal(err)
	}
	return srv, rec
}

func serveXDS(t *testing.T, srv *xds.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); <-done })
	return lis.Addr().String()
}

// secretsOf asks the server for every secret of node over a real SotW
// stream and returns them by name.
func secretsOf(t *testing.T, addr, node string) map[string]*tlsv3.Secret {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&discovery.DiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resource.SecretType})
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("secrets of %s: %v", node, err)
	}
	out := map[string]*tlsv3.Secret{}
	for _, a := range resp.GetResources() {
		var s tlsv3.Secret
		if err := a.UnmarshalTo(&s); err != nil {
			t.Fatal(err)
		}
		out[s.GetName()] = &s
	}
	return out
}

func names(m map[string]*tlsv3.Secret) string {
	var out []string
	for _, n := range []string{"ROOTCA", "bookinfo-credential", "default"} {
		if m[n] != nil {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

func leafOf(t *testing.T, s *tlsv3.Secret) *x509.Certificate {
	t.Helper()
	chain, err := ca.ParseCerts(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	if err != nil {
		t.Fatal(err)
	}
	return chain[0]
}

// TestSecretsPerClass: every class gets ROOTCA and its own identity's key;
// only the ingress gateway gets its credential; classes of one identity
// share one certificate; nothing secret reaches the state file.
func TestSecretsPerClass(t *testing.T) {
	h := newSecretsHarness(t)
	h.rec.ReconcileOnce(context.Background())
	if st := h.rec.Status(); !st.Ready {
		t.Fatalf("bookinfo not applied: %+v", st.LastAttempt)
	}
	cases := []struct{ node, secrets, identity string }{
		{"sidecar/default/reviews/v1/a", "ROOTCA,default", "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"},
		{"sidecar/default/reviews/v3/b", "ROOTCA,default", "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"},
		{"sidecar/default/ratings/v1/c", "ROOTCA,default", "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"},
		{"ingress/bookinfo-gateway/gw-0", "ROOTCA,bookinfo-credential,default", ""},
		{"egress/egress/gw-0", "ROOTCA,default", ""},
	}
	serials := map[string]string{}
	for _, c := range cases {
		got := secretsOf(t, h.addr, c.node)
		if n := names(got); n != c.secrets {
			t.Errorf("%s: secrets %s, want %s", c.node, n, c.secrets)
			continue
		}
		leaf := leafOf(t, got["default"])
		class := c.node[:strings.LastIndexByte(c.node, '/')]
		want, _ := h.rec.IdentityOf(class)
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != want || (c.identity != "" && want != c.identity) {
			t.Errorf("%s: certificate for %v, want %s", c.node, leaf.URIs, want)
		}
		if prev, ok := serials[want]; ok && prev != leaf.SerialNumber.String() {
			t.Errorf("%s: a second certificate for %s; want one per identity", c.node, want)
		}
		serials[want] = leaf.SerialNumber.String()
		if !bytes.Equal(got["ROOTCA"].GetValidationContext().GetTrustedCa().GetInlineBytes(), h.ca.TrustBundle()) {
			t.Errorf("%s: ROOTCA is not the CA's bundle", c.node)
		}
	}

	raw, err := os.ReadFile(filepath.Join(h.stateDir, "last-good.gob"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("PRIVATE KEY")) || bytes.Contains(raw, []byte("BEGIN CERTIFICATE")) {
		t.Error("the state file holds secrets")
	}
	lg, err := state.Load(h.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if cs := lg.Secrets["ingress/bookinfo-gateway"]; len(cs.Credentials) != 1 || cs.Credentials[0] != "bookinfo-credential" {
		t.Errorf("persisted plan of the gateway = %+v", cs)
	}

	// A restart without Git re-issues from the persisted CA: same root,
	// fresh leaves, every class served again.
	c2, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: filepath.Join(h.stateDir, "ca"), Now: h.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.ca = c2
	srv, rec := h.build()
	if err := rec.Restore(); err != nil {
		t.Fatal(err)
	}
	got := secretsOf(t, serveXDS(t, srv), "ingress/bookinfo-gateway/gw-1")
	if names(got) != "ROOTCA,bookinfo-credential,default" {
		t.Fatalf("after restore: secrets %s", names(got))
	}
	if !bytes.Equal(got["ROOTCA"].GetValidationContext().GetTrustedCa().GetInlineBytes(), h.ca.TrustBundle()) {
		t.Error("after restore: another root")
	}
}

// TestRotationIsSecretsOnly: with a third of their life left, certificates
// are re-issued and re-applied, and a delta stream receives the new
// `default` and nothing else.
func TestRotationIsSecretsOnly(t *testing.T) {
	h := newSecretsHarness(t)
	h.rec.ReconcileOnce(context.Background())
	issuedAt := h.clk.Now()
	if due := h.rec.secrets.due(); !due.Equal(issuedAt.Add(bookinfoTTL * 2 / 3)) {
		t.Fatalf("rotation due at %v, want 2/3 of the TTL after issue (%v)", due, issuedAt.Add(bookinfoTTL*2/3))
	}
	if n := h.rec.RotateSecrets(); n != 0 {
		t.Fatalf("rotated %d classes before anything was due", n)
	}

	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "sidecar/default/reviews/v2/r-0"}
	types := snapshot.Types()
	for _, typ := range types {
		stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: typ, ResourceNamesSubscribe: []string{"*"}})
	}
	var before *x509.Certificate
	for range types {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
		if resp.GetTypeUrl() == resource.SecretType {
			for _, r := range resp.GetResources() {
				var s tlsv3.Secret
				r.GetResource().UnmarshalTo(&s)
				if s.GetName() == "default" {
					before = leafOf(t, &s)
				}
			}
		}
	}
	if before == nil {
		t.Fatal("no default secret in the initial delta responses")
	}

	h.clk.Add(bookinfoTTL*2/3 + time.Second)
	n := h.rec.RotateSecrets()
	if classes := len(h.srv.Classes()); n != classes {
		t.Errorf("rotation changed %d classes, want all %d (all certificates were issued together)", n, classes)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTypeUrl() != resource.SecretType || len(resp.GetResources()) != 1 || resp.GetResources()[0].GetName() != "default" {
		t.Fatalf("after rotation the stream got %s %v, want only the new default secret", resp.GetTypeUrl(), resp.GetResources())
	}
	var s tlsv3.Secret
	resp.GetResources()[0].GetResource().UnmarshalTo(&s)
	after := leafOf(t, &s)
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || !after.NotAfter.After(before.NotAfter) {
		t.Error("the pushed certificate is not a new one")
	}
	stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
	// Nothing else follows: listeners, clusters and routes did not change.
	got := make(chan *discovery.DeltaDiscoveryResponse, 1)
	go func() {
		if r, err := stream.Recv(); err == nil {
			got <- r
		}
	}()
	select {
	case r := <-got:
		t.Errorf("an unrelated push followed the rotation: %s", r.GetTypeUrl())
	case <-time.After(300 * time.Millisecond):
	}
}

// TestRootRotationPushesBundle: after RotateRoot every class gets a
// two-root ROOTCA and a leaf of the new root.
func TestRootRotationPushesBundle(t *testing.T) {
	h := newSecretsHarness(t)
	h.rec.ReconcileOnce(context.Background())
	if err := h.ca.RotateRoot(time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := h.rec.RotateSecrets(); n == 0 {
		t.Fatal("a root rotation changed no class")
	}
	got := secretsOf(t, h.addr, "sidecar/default/ratings/v1/x")
	roots, _ := ca.ParseCerts(got["ROOTCA"].GetValidationContext().GetTrustedCa().GetInlineBytes())
	if len(roots) != 2 {
		t.Fatalf("ROOTCA has %d roots during the overlap, want 2", len(roots))
	}
	if err := leafOf(t, got["default"]).CheckSignatureFrom(roots[0]); err != nil {
		t.Errorf("the new leaf is not signed by the new root: %v", err)
	}
	h.clk.Add(time.Hour + time.Second)
	if due := h.rec.secrets.due(); due.After(h.clk.Now()) {
		t.Errorf("the end of the overlap is not due (due %v)", due)
	}
	h.rec.RotateSecrets()
	got = secretsOf(t, h.addr, "sidecar/default/ratings/v1/x")
	if roots, _ := ca.ParseCerts(got["ROOTCA"].GetValidationContext().GetTrustedCa().GetInlineBytes()); len(roots) != 1 {
		t.Errorf("ROOTCA has %d roots after the overlap, want 1", len(roots))
	}
}

// TestWithholdKeys: on a plaintext xDS port no private key is served, the
// trust bundle still is.
func TestWithholdKeys(t *testing.T) {
	h := newSecretsHarness(t)
	src, _ := source.NewDir(source.DirOptions{Dir: h.dir})
	srv, _ := xds.New(xds.Options{Logger: quiet})
	rec, err := New(Options{Source: src, Server: srv, Logger: quiet, CA: h.ca, Credentials: CredentialDir{Dir: h.creds}, WithholdKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	rec.ReconcileOnce(context.Background())
	addr := serveXDS(t, srv)
	for _, node := range []string{"ingress/bookinfo-gateway/gw-0", "sidecar/default/reviews/v1/a"} {
		got := secretsOf(t, addr, node)
		if names(got) != "ROOTCA" {
			t.Errorf("%s over plaintext: secrets %s, want ROOTCA only", node, names(got))
		}
	}
}

// TestMutualCredential: a MUTUAL listener's client CA is served as
// NAME-cacert next to the server pair, and refused when ca.crt is missing.
func TestMutualCredential(t *testing.T) {
	dir := credentialDir(t, "edge-cred", "edge.example.com")
	st := newSecretStore(Options{Credentials: CredentialDir{Dir: dir}, Now: time.Now}, newMetrics(), quiet)
	plan := map[string]state.ClassSecrets{"ingress/edge": {Identity: "spiffe://cluster.local/ns/default/sa/edge",
		Credentials: []string{"edge-cred", "edge-cred-cacert"}}}
	base := xds.Update{Revision: "r", Classes: map[string]*xds.ClassConfig{"ingress/edge": {Resources: map[string][]*xds.Resource{}}}}
	if _, _, err := st.build(base, plan); err == nil || !strings.Contains(err.Error(), "needs its client CA (ca.crt)") {
		t.Fatalf("MUTUAL without ca.crt: err = %v", err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "edge-cred", "tls.crt"))
	os.WriteFile(filepath.Join(dir, "edge-cred", "ca.crt"), caPEM, 0o644)
	u, _, err := st.build(base, plan)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range u.Classes["ingress/edge"].Resources[resource.SecretType] {
		got = append(got, r.Name)
	}
	if strings.Join(got, ",") != "edge-cred,edge-cred-cacert" {
		t.Errorf("secrets %v, want the server pair and the client CA", got)
	}
	if err := u.Validate(); err != nil {
		t.Error(err)
	}
}
