package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	"github.com/gitmesh/gitmesh/internal/gittest"
)

// gitServer is a bare repository served by a real `git daemon` on loopback,
// with a working clone to commit from.
type gitServer struct {
	t      *testing.T
	bare   string
	work   string
	daemon *gittest.Daemon
}

// gitEnv is the git CLI's environment in these tests; Ada commits.
var gitEnv = gittest.Env("", gittest.Person{Name: "Ada", Email: "ada@example.com"})

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return gittest.Run(t, gitEnv, dir, args...)
}

func newGitServer(t *testing.T) *gitServer {
	t.Helper()
	base := t.TempDir()
	g := &gitServer{t: t, bare: filepath.Join(base, "mesh.git"), work: filepath.Join(t.TempDir(), "work")}
	git(t, base, "init", "-q", "--bare", "-b", "main", g.bare)
	git(t, base, "init", "-q", "-b", "main", g.work)
	git(t, g.work, "remote", "add", "origin", g.bare)
	g.daemon = gittest.StartDaemon(t, base, gitEnv)
	return g
}

// stop takes the Git server away.
func (g *gitServer) stop() { g.daemon.Stop() }

func (g *gitServer) url() string { return g.daemon.URL("mesh.git") }

// commit writes files into the work tree, commits and pushes; it returns
// the commit SHA.
func (g *gitServer) commit(msg string, files map[string]string) string {
	g.t.Helper()
	gittest.WriteFiles(g.t, g.work, files)
	git(g.t, g.work, "add", "-A")
	git(g.t, g.work, "commit", "-q", "-m", msg)
	git(g.t, g.work, "push", "-q", "origin", "main")
	return git(g.t, g.work, "rev-parse", "HEAD")
}

// backendAt is a real gRPC server on ip that answers health checks for
// version.
func backendAt(t *testing.T, ip, version string) int {
	t.Helper()
	lis, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus(version, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().(*net.TCPAddr).Port
}

// versionBackend is a real gRPC server on 127.0.0.1 that tells which
// version it is: its health service answers SERVING for the name of its
// version only.
func versionBackend(t *testing.T, version string) int { return backendAt(t, "127.0.0.1", version) }

// xdsClient is a real grpc-go client resolving xds:///target through our
// ADS server with its own bootstrap (grpc-go's per-client option, so no
// environment variable and no child process).
func xdsClient(t *testing.T, xdsAddr, nodeID, target string) healthpb.HealthClient {
	t.Helper()
	bootstrap := fmt.Sprintf(`{"xds_servers":[{"server_uri":%q,"channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":%q}}`, xdsAddr, nodeID)
	builder, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(builder))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// split sends n RPCs and counts how many reached v1 and v2.
func split(t *testing.T, c healthpb.HealthClient, n int) (v1, v2, failed int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "v1"}, grpc.WaitForReady(true))
		cancel()
		switch status.Code(err) {
		case codes.OK:
			v1++
		case codes.NotFound:
			v2++
		default:
			failed++
		}
	}
	return v1, v2, failed
}

// startServe runs the real serve wiring in-process and returns it once its
// ports are bound; the returned stop function shuts it down and waits.
// serveReady starts serve with cfg, waits until /readyz answers 200, and
// returns it with its debug log (printed if the test fails) and the base
// URL of its status port.
func serveReady(t *testing.T, cfg serveConfig, timeout time.Duration) (*serveMain, *syncLog, string) {
	t.Helper()
	logs := &syncLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gitmesh logs:\n%s", logs.String())
		}
	})
	m, _ := startServe(t, cfg, logs)
	base := "http://" + m.HTTPAddr()
	waitFor(t, timeout, "readyz", func() bool { code, _ := httpGet(t, base+"/readyz"); return code == 200 })
	return m, logs, base
}

func startServe(t testing.TB, cfg serveConfig, logs io.Writer) (*serveMain, func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := newServeMain(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s")
		}
	}
	t.Cleanup(stop)
	return m, stop
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getStatus(t *testing.T, m *serveMain, v any) {
	t.Helper()
	code, body := httpGet(t, "http://"+m.HTTPAddr()+"/api/v1/status")
	if code != http.StatusOK {
		t.Fatalf("status API: %d %s", code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 10ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
	return 0
}

// postHook sends a generic webhook signed with secret (or a wrong one).
func postHook(t *testing.T, m *serveMain, secret string) int {
	t.Helper()
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+m.HTTPAddr()+"/hooks/generic", bytes.NewReader(body))
	req.Header.Set("X-Gitmesh-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
