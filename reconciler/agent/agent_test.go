package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/gitmesh/gitmesh/examples/grpc-canary/hello"
	"github.com/gitmesh/gitmesh/reconciler"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/render/bootstrap"
)

// strictMesh has three proxyless services over STRICT mTLS: secure (a real
// xDS-enabled grpc-go server) lets only client call it; intruder may route
// to it (dependsOn) but its identity is not allowed.
func strictMesh(securePort int) string {
	return fmt.Sprintf(`package mesh

mesh: {name: "mtls", mtls: "STRICT"}

services: client: {
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50050, protocol: "grpc"}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
	dependsOn: ["secure"]
}

services: intruder: {
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50050, protocol: "grpc"}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
	dependsOn: ["secure"]
}

services: secure: {
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50052, protocol: "grpc", targetPort: %d}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
	dependsOn: []
	authorization: allow: [{from: [{service: "client"}]}]
}
`, securePort)
}

const (
	clientNode   = "proxyless/default/client/v1/client-0"
	intruderNode = "proxyless/default/intruder/v1/intruder-0"
	secureNode   = "proxyless/default/secure/v1/secure-0"
)

// plane is gitmesh on loopback: the reconciler (with its rotation loop
// running) over a directory, the CA, and the xDS server requiring mTLS.
type plane struct {
	ca   *ca.CA
	rec  *reconciler.Reconciler
	srv  *xds.Server
	addr string
}

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("AGENT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startPlane(t *testing.T, meshSrc string, ttl time.Duration) *plane {
	t.Helper()
	return startPlaneWith(t, meshSrc, ttl, nil)
}

// startPlaneWith is startPlane with extra changing the xDS server's
// options (the signing service of token mode) before it is built.
func startPlaneWith(t *testing.T, meshSrc string, ttl time.Duration, extra func(p *plane, o *xds.Options)) *plane {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte(meshSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	authority, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: filepath.Join(t.TempDir(), "ca"), WorkloadTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	p := &plane{ca: authority}
	xopts := xds.Options{
		Logger: logger(t), ShutdownTimeout: time.Second,
		Credentials: xds.MutualTLS(
			func() (*tls.Certificate, error) { return authority.ServingCert([]string{"localhost"}) }, authority.TrustPool),
		Authorize: xds.AuthorizeIdentity(func(class string) (string, bool) { return p.rec.IdentityOf(class) }),
	}
	if extra != nil {
		extra(p, &xopts)
	}
	p.srv, err = xds.New(xopts)
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.NewDir(source.DirOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p.rec, err = reconciler.New(reconciler.Options{Source: src, Server: p.srv, Logger: logger(t), Interval: time.Hour, CA: authority, WorkloadTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.srv.Serve(ctx, lis) }()
	go func() { defer wg.Done(); p.rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for !p.rec.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("mesh not applied: %+v", p.rec.Status().LastAttempt)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// workload is one proxyless application's side: the bootstrap certificate
// (what `gitmesh certs issue` writes), the agent keeping DIR current, and
// the gRPC bootstrap pointing at DIR.
type workload struct {
	node      string
	dir       string
	bootstrap []byte
	rotations atomic.Int32
}

func startWorkload(t *testing.T, p *plane, node, identity string) *workload {
	t.Helper()
	w := &workload{node: node, dir: filepath.Join(t.TempDir(), "certs")}
	boot := t.TempDir()
	is, err := p.ca.Issue(identity, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(boot, "cert.pem"), is.CertPEM, 0o644)
	os.WriteFile(filepath.Join(boot, "key.pem"), is.KeyPEM, 0o600)
	os.WriteFile(filepath.Join(boot, "ca.pem"), p.ca.TrustBundle(), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Options{NodeID: node, XDSAddress: p.addr, ServerName: "localhost", OutDir: w.dir, Logger: logger(t),
			CertFile: filepath.Join(boot, "cert.pem"), KeyFile: filepath.Join(boot, "key.pem"), CAFile: filepath.Join(boot, "ca.pem"),
			RetryBase: 50 * time.Millisecond, Written: func(*x509.Certificate) { w.rotations.Add(1) }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, 10*time.Second, "the agent of "+node+" to write certificates", func() bool { return w.rotations.Load() > 0 })

	// The app re-reads its files every 100ms instead of a minute, so
	// 3-second certificates are picked up long before they expire (both
	// by the file_watcher provider and by the xDS channel's own credentials).
	raw, err := bootstrap.GRPC(bootstrap.Options{NodeID: node, XDSAddress: p.addr, RefreshInterval: "0.1s", TLS: &bootstrap.TLSFiles{
		CertFile: filepath.Join(w.dir, CertFile), KeyFile: filepath.Join(w.dir, KeyFile), CAFile: filepath.Join(w.dir, CAFile)}})
	if err != nil {
		t.Fatal(err)
	}
	w.bootstrap = raw
	return w
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serveSecure runs the xDS-enabled Greeter with xDS server credentials:
// mTLS and RBAC exactly as rendered, certificates from the agent's files.
func serveSecure(t *testing.T, w *workload, lis net.Listener) {
	t.Helper()
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	serving := make(chan connectivity.ServingMode, 8)
	gs, err := grpcxds.NewGRPCServer(grpc.Creds(creds), grpcxds.BootstrapContentsForTesting(w.bootstrap),
		grpcxds.ServingModeCallback(func(_ net.Addr, args grpcxds.ServingModeChangeArgs) {
			select {
			case serving <- args.Mode:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	hello.Register(gs, hello.Version("secure"))
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	timeout := time.After(15 * time.Second)
	for mode := connectivity.ServingModeStarting; mode != connectivity.ServingModeServing; {
		select {
		case mode = <-serving:
		case <-timeout:
			t.Fatalf("secure server not serving (last mode %v)", mode)
		}
	}
}

// dialSecure opens xds:///secure:50052 as w with xDS client credentials.
func dialSecure(t *testing.T, w *workload, r resolver.Builder) *hello.Client {
	t.Helper()
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("xds:///secure:50052", grpc.WithTransportCredentials(creds), grpc.WithResolvers(r))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return hello.NewClient(cc)
}

func resolverFor(t *testing.T, w *workload) resolver.Builder {
	t.Helper()
	r, err := grpcxds.NewXDSResolverWithConfigForTesting(w.bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func call(c *hello.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.SayHello(ctx, "x", grpc.WaitForReady(true))
	return err
}

// callAcrossRotations keeps calling on the long-lived channel allowed, and
// opens a fresh channel from client every 500ms (new handshakes with
// whatever the files hold), until rotated reports that enough certificates
// were replaced. It fails t when that takes longer than within (progress
// says how far the rotations got) and when any RPC failed.
func callAcrossRotations(t *testing.T, client, secure *workload, clientRes resolver.Builder, allowed *hello.Client,
	within time.Duration, what string, rotated func() bool, progress func() string) {
	t.Helper()
	var calls, failures int
	var firstErr error
	deadline := time.Now().Add(within)
	lastFresh := time.Now()
	for !rotated() {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than two %s in %v (%s)", what, within, progress())
		}
		if err := call(allowed); err != nil {
			failures++
			firstErr = err
		}
		calls++
		if time.Since(lastFresh) > 500*time.Millisecond {
			lastFresh = time.Now()
			if err := call(dialSecure(t, client, clientRes)); err != nil {
				failures++
				firstErr = err
			}
			calls++
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%d RPCs across %d client and %d server certificate writes: %d failed", calls, client.rotations.Load(), secure.rotations.Load(), failures)
	if failures > 0 {
		t.Errorf("%d of %d RPCs failed during rotation; first: %v", failures, calls, firstErr)
	}
}

// TestMeshMTLS is issue 5's data-plane acceptance, all real on loopback:
// gitmesh's CA issues, its SDS pushes, the agent writes files, and grpc-go's
// xDS credentials (file_watcher providers) do mutual TLS as rendered for a
// STRICT mesh. The allowed caller succeeds, the denied one gets
// PermissionDenied from RBAC on its SPIFFE id, a stranger's certificate
// cannot connect, and with 3-second certificates RPCs keep flowing with
// zero failures across rotations.
func TestMeshMTLS(t *testing.T) {
	const ttl = 3 * time.Second
	secureLis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { secureLis.Close() })
	securePort := secureLis.Addr().(*net.TCPAddr).Port
	p := startPlane(t, strictMesh(securePort), ttl)

	secure := startWorkload(t, p, secureNode, "spiffe://cluster.local/ns/default/sa/secure")
	client := startWorkload(t, p, clientNode, "spiffe://cluster.local/ns/default/sa/client")
	intruder := startWorkload(t, p, intruderNode, "spiffe://cluster.local/ns/default/sa/intruder")
	serveSecure(t, secure, secureLis)

	clientRes := resolverFor(t, client)
	allowed := dialSecure(t, client, clientRes)
	if err := call(allowed); err != nil {
		t.Fatalf("client → secure over mTLS: %v", err)
	}
	if err := call(dialSecure(t, intruder, resolverFor(t, intruder))); status.Code(err) != codes.PermissionDenied {
		t.Errorf("intruder → secure: %v, want PermissionDenied", err)
	}

	// A certificate from another CA for client's very identity: the secure
	// server's handshake refuses it.
	other, err := ca.New(ca.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Issue("spiffe://cluster.local/ns/default/sa/client", time.Hour)
	pair, _ := tls.X509KeyPair(forged.CertPEM, forged.KeyPEM)
	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", securePort), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair}, RootCAs: p.ca.TrustPool(),
		// The server presents a SPIFFE certificate with no DNS name; the
		// forger accepts whatever it gets, the server must still refuse.
		InsecureSkipVerify: true,
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = hello.NewClient(cc).SayHello(ctx, "x")
	cancel()
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("stranger CA → secure: %v, want Unavailable (handshake refused)", err)
	}

	// Rotation: every workload's certificate is replaced at least twice.
	start := client.rotations.Load()
	callAcrossRotations(t, client, secure, clientRes, allowed, 20*time.Second, "rotations",
		func() bool { return client.rotations.Load()-start >= 2 && secure.rotations.Load() >= 3 },
		func() string {
			return fmt.Sprintf("client %d, secure %d", client.rotations.Load()-start, secure.rotations.Load())
		})
	// The files hold a current certificate, not the first one.
	cur, err := tls.LoadX509KeyPair(filepath.Join(client.dir, CertFile), filepath.Join(client.dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(cur.Leaf.NotAfter); left <= 0 || left > ttl {
		t.Errorf("the client's certificate has %v left, want within its %v life", left, ttl)
	}
	if st, _ := os.Stat(filepath.Join(client.dir, KeyFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(string(cur.Leaf.URIs[0].String()), "/sa/client") {
		t.Errorf("client's files hold %v", cur.Leaf.URIs)
	}
}
