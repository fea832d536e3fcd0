package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// tokenMesh is two proxyless services in namespace ns over STRICT mTLS:
// secure lets only client call it.
func tokenMesh(ns string, securePort int) string {
	return fmt.Sprintf(`package mesh

mesh: {name: "mtls", mtls: "STRICT"}

services: client: {
	namespace: %[1]q
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50050, protocol: "grpc"}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
	dependsOn: ["secure"]
}

services: secure: {
	namespace: %[1]q
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50052, protocol: "grpc", targetPort: %[2]d}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
	dependsOn: []
	authorization: allow: [{from: [{service: "client"}]}]
}
`, ns, securePort)
}

// startTokenWorkload runs an agent in token mode for node with a
// TokenRequest token of service account sa (what kubelet projects), and
// takes the gRPC bootstrap the agent writes.
func startTokenWorkload(t *testing.T, c *kubetest.Cluster, p *plane, ns, sa, node string, ttl time.Duration) *workload {
	t.Helper()
	pod := t.TempDir()
	tokenFile := filepath.Join(pod, "token")
	caFile := filepath.Join(pod, "ca.pem")
	os.WriteFile(tokenFile, []byte(c.Token(t, ns, sa, certsvc.Audience)), 0o600)
	os.WriteFile(caFile, p.ca.TrustBundle(), 0o644)
	w := &workload{node: node, dir: filepath.Join(pod, "certs")}
	grpcBoot, envoyBoot := filepath.Join(pod, GRPCBootstrapFile), filepath.Join(pod, EnvoyBootstrapFile)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := Run(ctx, Options{NodeID: node, XDSAddress: p.addr, ServerName: "localhost", OutDir: w.dir, Logger: logger(t),
			TokenFile: tokenFile, CAFile: caFile, CertTTL: ttl, GRPCBootstrapOut: grpcBoot, BootstrapOut: envoyBoot,
			RefreshInterval: "0.1s", RetryBase: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond,
			Written: func(*x509.Certificate) { w.rotations.Add(1) }})
		if err != nil {
			t.Errorf("agent %s: %v", node, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, 20*time.Second, "the agent of "+node+" to write certificates", func() bool { return w.rotations.Load() > 0 })
	waitUntil(t, 5*time.Second, "the agent of "+node+" to write its bootstraps", func() bool {
		_, err1 := os.Stat(grpcBoot)
		_, err2 := os.Stat(envoyBoot)
		return err1 == nil && err2 == nil
	})
	var err error
	if w.bootstrap, err = os.ReadFile(grpcBoot); err != nil {
		t.Fatal(err)
	}
	env, _ := os.ReadFile(envoyBoot)
	var parsed map[string]any
	if json.Unmarshal(env, &parsed) != nil || !strings.Contains(string(env), node) || !strings.Contains(string(env), filepath.Join(w.dir, SDSCertFile)) {
		t.Errorf("envoy bootstrap of %s does not name the node and the SDS certificate file:\n%s", node, env)
	}
	return w
}

// TestTokenIdentityRotation is issue 14 item 4's rotation acceptance: two
// proxyless grpc-go workloads get their identity only from service-account
// tokens (checked by the real API server's TokenReview), talk over STRICT
// mTLS with RBAC on those identities, and keep talking with zero failed RPCs
// while their 3-second certificates are renewed at least twice. Deleting
// the client's service account then stops its renewals.
func TestTokenIdentityRotation(t *testing.T) {
	const ttl = 3 * time.Second
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	for _, name := range []string{"client", "secure"} {
		c.ServiceAccount(t, ns, name)
	}
	secureLis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { secureLis.Close() })
	var signer *certsvc.Server
	p := startPlaneWith(t, tokenMesh(ns, secureLis.Addr().(*net.TCPAddr).Port), ttl, func(p *plane, o *xds.Options) {
		var err error
		signer, err = certsvc.New(certsvc.Options{CA: p.ca, Reviewer: certsvc.KubeReviewer{Client: c.Client},
			TrustDomain: func() (string, bool) { return p.rec.TrustDomain() }, Logger: logger(t), Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		o.Credentials = xds.MutualTLSCertOptional(func() (*tls.Certificate, error) { return p.ca.ServingCert([]string{"localhost"}) }, p.ca.TrustPool)
		o.Services = signer.Register
		o.Certless = []string{certsvc.CreateCertificateMethod}
	})

	secure := startTokenWorkload(t, c, p, ns, "secure", "proxyless/"+ns+"/secure/v1/secure-0", ttl)
	client := startTokenWorkload(t, c, p, ns, "client", "proxyless/"+ns+"/client/v1/client-0", ttl)
	serveSecure(t, secure, secureLis)
	clientRes := resolverFor(t, client)
	allowed := dialSecure(t, client, clientRes)
	if err := call(allowed); err != nil {
		t.Fatalf("client → secure over mTLS with token-issued identities: %v", err)
	}

	start, startSecure := client.rotations.Load(), secure.rotations.Load()
	callAcrossRotations(t, client, secure, clientRes, allowed, 30*time.Second, "renewals",
		func() bool { return client.rotations.Load()-start >= 2 && secure.rotations.Load()-startSecure >= 2 },
		func() string {
			return fmt.Sprintf("client %d, secure %d", client.rotations.Load()-start, secure.rotations.Load()-startSecure)
		})
	cur, err := tls.LoadX509KeyPair(filepath.Join(client.dir, CertFile), filepath.Join(client.dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := "spiffe://cluster.local/ns/" + ns + "/sa/client"; len(cur.Leaf.URIs) != 1 || cur.Leaf.URIs[0].String() != want {
		t.Errorf("client's certificate is %v, want %s", cur.Leaf.URIs, want)
	}
	if left := time.Until(cur.Leaf.NotAfter); left <= 0 || left > ttl {
		t.Errorf("the client's certificate has %v left, want within its %v life", left, ttl)
	}
	if st, _ := os.Stat(filepath.Join(client.dir, KeyFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}

	// A deleted service account stops getting certificates.
	refusedBefore := testutil.ToFloat64(signer.Requests(certsvc.ResultUnauthenticated))
	if err := c.Client.CoreV1().ServiceAccounts(ns).Delete(context.Background(), "client", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the deleted service account's renewal to be refused", func() bool {
		return testutil.ToFloat64(signer.Requests(certsvc.ResultUnauthenticated)) > refusedBefore
	})
	n := client.rotations.Load()
	time.Sleep(2 * ttl)
	if got := client.rotations.Load(); got != n {
		t.Errorf("the client got %d more certificates after its service account was deleted", got-n)
	}
	if time.Now().Before(mustLeaf(t, client.dir).NotAfter) {
		t.Errorf("the client's last certificate is still valid %v after its service account was deleted", 2*ttl)
	}
}

func mustLeaf(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	cur, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return cur.Leaf
}
