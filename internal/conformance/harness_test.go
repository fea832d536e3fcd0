package conformance

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/gitmesh/gitmesh/examples/grpc-canary/hello"
	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/render/bootstrap"
	"github.com/gitmesh/gitmesh/schema"
)

// waitLimit bounds every wait in the test: config arrives in tens of
// milliseconds, so anything slower is a failure, not slowness.
const waitLimit = 10 * time.Second

// testLog is an io.Writer into t.Log that goes quiet once the test ends, so
// a late log line from a server goroutine cannot panic the test binary.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newTestLog(t testing.TB) *testLog {
	w := &testLog{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return w
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// listen opens an IPv4 TCP listener that lives until the test ends. IPv4
// because Go reports a "tcp" listener on 0.0.0.0 as [::]:PORT, and an
// xDS-enabled grpc-go server asks for the listener named after that address,
// not the 0.0.0.0:PORT one gitmesh renders.
func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis
}

func portOf(lis net.Listener) int { return lis.Addr().(*net.TCPAddr).Port }

// serveGreeter runs a plain grpc-go Greeter answering with version on a free
// loopback port and returns the port.
func serveGreeter(t testing.TB, version string) int {
	t.Helper()
	lis := listen(t, "127.0.0.1:0")
	gs := grpc.NewServer()
	hello.Register(gs, hello.Version(version))
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return portOf(lis)
}

// loadMesh fills the CUE template with data, loads it with the real loader
// and policies, and renders it. Error findings fail the test; warnings are
// logged, since the test mesh deliberately runs without mTLS.
func loadMesh(t testing.TB, tmplPath string, data any) *render.Bundle {
	t.Helper()
	return loadResult(t, tmplPath, data).Bundle
}

// loadResult is loadMesh with the whole pipeline result (the model and
// the traffic tests' verdicts, for the cross-check with grpc-go).
func loadResult(t testing.TB, tmplPath string, data any) *pipeline.Result {
	t.Helper()
	raw, err := os.ReadFile(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New(tmplPath).Option("missingkey=error").Parse(string(raw))
	if err != nil {
		t.Fatalf("parse %s: %v", tmplPath, err)
	}
	var src bytes.Buffer
	if err := tmpl.Execute(&src, data); err != nil {
		t.Fatalf("fill %s: %v", tmplPath, err)
	}
	fsys := fstest.MapFS{"mesh.cue": {Data: src.Bytes()}}
	res := pipeline.Run(context.Background(), pipeline.Input{Files: fsys, Load: schema.Options{}})
	if res.Err != nil {
		t.Fatalf("validate: %v", res.Err)
	}
	for _, d := range res.Diagnostics {
		t.Logf("finding: %s %s: %v", d.Code, d.Severity, d.Error())
	}
	if !res.OK() {
		t.Fatalf("the conformance mesh does not validate (failed at %s):\n%s", res.FailedStep, src.String())
	}
	return res
}

// mesh is gitmesh's ADS server on loopback, serving one rendered revision.
type mesh struct {
	srv  *xds.Server
	addr string
}

// startMesh serves bundle as revision rev with the real xDS server.
func startMesh(t testing.TB, rev string, bundle *render.Bundle) *mesh {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(newTestLog(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := xds.New(xds.Options{Logger: logger, ShutdownTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(bundle.Update(rev)); err != nil {
		t.Fatalf("apply %s: %v", rev, err)
	}
	lis := listen(t, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve xds: %v", err)
		}
	})
	return &mesh{srv: srv, addr: lis.Addr().String()}
}

// bootstrap is the gRPC xDS bootstrap gitmesh hands out for nodeID.
func (m *mesh) bootstrap(t testing.TB, nodeID string) []byte {
	t.Helper()
	b, err := bootstrap.GRPC(bootstrap.Options{NodeID: nodeID, XDSAddress: m.addr})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resolver returns an xds:/// resolver with its own bootstrap and xDS client
// pool: a per-client bootstrap in-process, so no child process is needed to
// get around GRPC_XDS_BOOTSTRAP being read once at init.
func (m *mesh) resolver(t testing.TB, nodeID string) resolver.Builder {
	t.Helper()
	b, err := grpcxds.NewXDSResolverWithConfigForTesting(m.bootstrap(t, nodeID))
	if err != nil {
		t.Fatalf("xds resolver for %s: %v", nodeID, err)
	}
	return b
}

// dialConn opens a grpc-go channel to xds:///target through r; it lives
// until the test ends.
func dialConn(t testing.TB, r resolver.Builder, target string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(r))
	if err != nil {
		t.Fatalf("dial xds:///%s: %v", target, err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// dial is dialConn with a Greeter client on top.
func dial(t testing.TB, r resolver.Builder, target string) *hello.Client {
	t.Helper()
	return hello.NewClient(dialConn(t, r, target))
}

// serveXDSGreeter runs an xDS-enabled grpc-go Greeter (plus the health
// service, a method no rule allows) on lis, configured by gitmesh as nodeID,
// and waits until grpc-go reports it serving — which it only does after
// accepting the rendered server listener.
func (m *mesh) serveXDSGreeter(t testing.TB, lis net.Listener, nodeID, version string) {
	t.Helper()
	serving := make(chan grpcxds.ServingModeChangeArgs, 8)
	tl := newTestLog(t)
	gs, err := grpcxds.NewGRPCServer(
		grpc.Creds(insecure.NewCredentials()),
		grpcxds.BootstrapContentsForTesting(m.bootstrap(t, nodeID)),
		grpcxds.ServingModeCallback(func(addr net.Addr, args grpcxds.ServingModeChangeArgs) {
			fmt.Fprintf(tl, "xds server %s: %v (err %v)", addr, args.Mode, args.Err)
			select {
			case serving <- args:
			default:
			}
		}),
	)
	if err != nil {
		t.Fatalf("xds server: %v", err)
	}
	hello.Register(gs, hello.Version(version))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	// grpc-go may report NOT_SERVING before the listener arrives; only a
	// timeout without SERVING is a failure, reported with the last reason.
	timeout := time.After(waitLimit)
	var last grpcxds.ServingModeChangeArgs
	for last.Mode != connectivity.ServingModeServing {
		select {
		case last = <-serving:
		case <-timeout:
			t.Fatalf("xds server not serving after %v; last mode %v: %v\nits streams:\n%s\nrejections: %+v",
				waitLimit, last.Mode, last.Err, describe(streamsOf(m.srv, nodeID)), m.srv.Rejections())
		}
	}
}
