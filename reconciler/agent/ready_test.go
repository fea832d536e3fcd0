package agent

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
)

// gatedReviewer refuses every token until open is set, then admits "tok"
// as ns/sa: the signing service is reachable but will not sign yet.
type gatedReviewer struct {
	open  atomic.Bool
	calls atomic.Int32
}

func (g *gatedReviewer) Review(_ context.Context, token string) (certsvc.ServiceAccount, error) {
	g.calls.Add(1)
	if !g.open.Load() || token != "tok" {
		return certsvc.ServiceAccount{}, &certsvc.RefusedError{Reason: "not yet"}
	}
	return certsvc.ServiceAccount{Namespace: "ns", Name: "sa"}, nil
}

// startSigner serves the signing service alone over TLS and returns its
// address and CA.
func startSigner(t *testing.T, r certsvc.Reviewer) (string, *ca.CA) {
	t.Helper()
	authority, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := certsvc.New(certsvc.Options{CA: authority, Reviewer: r, Logger: logger(t),
		TrustDomain: func() (string, bool) { return "cluster.local", true }})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return authority.ServingCert([]string{"localhost"})
		}})))
	svc.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), authority
}

func getReady(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestReadyEndpoint: the status endpoint answers 503 while the agent has
// no certificate (the signing service refuses it), and 200 only once the
// certificate and both bootstraps are on disk.
func TestReadyEndpoint(t *testing.T) {
	rev := &gatedReviewer{}
	addr, authority := startSigner(t, rev)
	pod := t.TempDir()
	tokenFile, caFile := filepath.Join(pod, "token"), filepath.Join(pod, "root.pem")
	os.WriteFile(tokenFile, []byte("tok\n"), 0o600)
	os.WriteFile(caFile, authority.TrustBundle(), 0o644)
	out := filepath.Join(pod, "certs")
	envoyBoot, grpcBoot := filepath.Join(pod, EnvoyBootstrapFile), filepath.Join(pod, GRPCBootstrapFile)
	status, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + status.Addr().String() + ReadyPath

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{NodeID: "proxyless/ns/secure/v1/secure-0", XDSAddress: addr, ServerName: "localhost",
			TokenFile: tokenFile, CAFile: caFile, OutDir: out, BootstrapOut: envoyBoot, GRPCBootstrapOut: grpcBoot,
			ReadyListener: status, RetryBase: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond, Logger: logger(t)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	// Refused at least twice: the agent has asked and retried, and must
	// still say it is not ready.
	waitUntil(t, 10*time.Second, "the agent to ask for a certificate twice", func() bool { return rev.calls.Load() >= 2 })
	if code, err := getReady(url); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("before the first certificate: GET %s = %d, %v; want 503", ReadyPath, code, err)
	}
	if _, err := os.Stat(filepath.Join(out, CertFile)); err == nil {
		t.Fatal("a certificate was written although the signing service refused")
	}
	if code, err := getReady("http://" + status.Addr().String() + "/other"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /other = %d, %v; want 404", code, err)
	}

	rev.open.Store(true)
	waitUntil(t, 10*time.Second, "the agent to become ready", func() bool {
		code, err := getReady(url)
		return err == nil && code == http.StatusOK
	})
	for _, f := range []string{filepath.Join(out, CertFile), filepath.Join(out, KeyFile), filepath.Join(out, CAFile), envoyBoot, grpcBoot} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("ready, but %s is not written: %v", f, err)
		}
	}
}
