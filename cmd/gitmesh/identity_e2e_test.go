package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/reconciler/agent"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
	"github.com/gitmesh/gitmesh/reconciler/drift"
)

// TestServeIssuesByToken is workload identity through serve's real wiring:
// with --kubeconfig, the xDS port signs for a service-account token (the
// agent in token mode), the certificate it writes is admitted on the xDS
// port as its node, and a stream without a certificate is still refused.
func TestServeIssuesByToken(t *testing.T) {
	cluster := kubetest.Shared(t)
	ns := cluster.Namespace(t)
	cluster.ServiceAccount(t, ns, "greeter")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte(fmt.Sprintf(`package mesh

mesh: {name: "identity", mtls: "STRICT"}

services: greeter: {
	namespace: %q
	proxy:     "proxyless"
	ports: [{name: "grpc", number: 50051, protocol: "grpc"}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
}
`, ns)), 0o644)
	cfg := serveConfig{dir: dir, xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", stateDir: t.TempDir(),
		interval: time.Hour, xdsNames: []string{"localhost"}, workloadTTL: time.Hour}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
	cfg.drift = driftFlags{cluster: "kube", kubernetes: "auto", kubeconfig: cluster.Kubeconfig, kubeNamespaces: []string{ns},
		interval: time.Second, staleAfter: 5 * time.Second, expiryWarning: drift.DefaultExpiryWarning, leaderElect: "auto"}
	logs := &syncLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gitmesh logs:\n%s", logs.String())
		}
	})
	patch := []byte(`{"metadata":{"labels":{"gitmesh.io/inject":"enabled"}}}`)
	if _, err := cluster.Client.CoreV1().Namespaces().Patch(context.Background(), ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	m, _ := startServe(t, cfg, logs)
	base := "http://" + m.HTTPAddr()
	waitFor(t, 30*time.Second, "readyz", func() bool { code, _ := httpGet(t, base+"/readyz"); return code == 200 })

	pod := t.TempDir()
	os.WriteFile(filepath.Join(pod, "token"), []byte(cluster.Token(t, ns, "greeter", certsvc.Audience)), 0o600)
	// The pod's --ca is the ConfigMap serve publishes in opted-in
	// namespaces, which the injected pod mounts at /etc/gitmesh.
	var bundle string
	waitFor(t, 20*time.Second, "the trust bundle ConfigMap", func() bool {
		cm, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(context.Background(), certsvc.RootConfigMap, metav1.GetOptions{})
		if err != nil {
			return false
		}
		bundle = cm.Data[certsvc.RootConfigMapKey]
		return true
	})
	if bundle != string(m.ca.TrustBundle()) {
		t.Fatalf("published bundle %q, want the CA's", bundle)
	}
	os.WriteFile(filepath.Join(pod, "ca.pem"), []byte(bundle), 0o644)
	node := "proxyless/" + ns + "/greeter/v1/greeter-0"
	out := filepath.Join(pod, "certs")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	written := make(chan *x509.Certificate, 4)
	go func() {
		defer close(done)
		agent.Run(ctx, agent.Options{NodeID: node, XDSAddress: m.XDSAddr(), ServerName: "localhost", OutDir: out,
			Logger:    slog.New(slog.NewTextHandler(logs, nil)),
			TokenFile: filepath.Join(pod, "token"), CAFile: filepath.Join(pod, "ca.pem"), RetryBase: 100 * time.Millisecond,
			GRPCBootstrapOut: filepath.Join(pod, agent.GRPCBootstrapFile),
			Written: func(c *x509.Certificate) {
				select {
				case written <- c:
				default:
				}
			}})
	}()
	t.Cleanup(func() { cancel(); <-done })
	var leaf *x509.Certificate
	select {
	case leaf = <-written:
	case <-time.After(20 * time.Second):
		t.Fatal("the agent got no certificate from serve in 20s")
	}
	if want := "spiffe://cluster.local/ns/" + ns + "/sa/greeter"; len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
		t.Fatalf("certificate for %v, want %s", leaf.URIs, want)
	}
	if got := metricSum(t, base, "gitmesh_ca_requests_total", `result="issued"`); got < 1 {
		t.Errorf("gitmesh_ca_requests_total{result=\"issued\"} = %v", got)
	}

	ask := func(cert *tls.Certificate) (*discovery.DiscoveryResponse, error) {
		tc := &tls.Config{RootCAs: m.ca.TrustPool(), ServerName: "localhost"}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(m.XDSAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			return nil, err
		}
		s.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: resource.SecretType, ResourceNames: []string{"default"}})
		return s.Recv()
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(out, agent.CertFile), filepath.Join(out, agent.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := ask(&pair); err != nil || len(resp.GetResources()) != 1 {
		t.Errorf("the token-issued certificate on the xDS port as %s: %v, %v", node, resp, err)
	}
	if _, err := ask(nil); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("xDS without a client certificate: %v, want Unauthenticated", err)
	}
}
