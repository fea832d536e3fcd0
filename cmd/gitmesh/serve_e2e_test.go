package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// e2eMesh is a proxyless gRPC mesh: a client that calls greeter, whose two
// versions are real gRPC servers on loopback.
func e2eMesh(v1Port, v2Port, w1, w2 int) string {
	return fmt.Sprintf(`package mesh

// Plain text between applications: certificates for proxyless mTLS come
// with the CA, which this test does not run.
mesh: {name: "e2e", mtls: "DISABLE"}

services: greeter: {
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50051, protocol: "grpc"}]
	versions: {
		v1: endpoints: [{address: "127.0.0.1", ports: grpc: %d}]
		v2: endpoints: [{address: "127.0.0.1", ports: grpc: %d}]
	}
	routes: [{
		to: [
			{version: "v1", weight: %d},
			{version: "v2", weight: %d},
		]
		timeout: "5s"
	}]
}

services: client: {
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50052, protocol: "grpc"}]
	versions: v1: {}
	dependsOn: ["greeter"]
}
`, v1Port, v2Port, w1, w2)
}

// syncLog is a log buffer the serve goroutines write while the test reads.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeEndToEnd is issue 4's acceptance test, all real and on loopback:
// git daemon, the real serve wiring, grpc-go xds:/// clients, real backends.
func TestServeEndToEnd(t *testing.T) {
	v1, v2 := versionBackend(t, "v1"), versionBackend(t, "v2")
	repo := newGitServer(t)
	good := repo.commit("greeter: all traffic on v1", map[string]string{"mesh/mesh.cue": e2eMesh(v1, v2, 100, 0)})

	const secret = "e2e-webhook-secret-d41d8cd98f00b204"
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
	stateDir := t.TempDir()
	cfg := serveConfig{
		repo: repo.url(), branch: "main", path: "mesh",
		xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: stateDir, interval: time.Hour, // only webhooks trigger fetches
		webhookSecretFile: secretFile,
	}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
	logs := &syncLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gitmesh logs:\n%s", logs.String())
		}
	})
	m, stop := startServe(t, cfg, logs)
	base := "http://" + m.HTTPAddr()

	waitFor(t, 10*time.Second, "readyz", func() bool { code, _ := httpGet(t, base+"/readyz"); return code == 200 })
	client := xdsClient(t, m.XDSAddr(), "proxyless/default/client/v1/e2e-1", "greeter:50051")
	waitFor(t, 10*time.Second, "the first RPC through xds:///", func() bool { a, _, _ := split(t, client, 1); return a == 1 })
	if a, b, f := split(t, client, 100); a != 100 || f != 0 {
		t.Fatalf("at 100/0: v1=%d v2=%d failed=%d, want all on v1", a, b, f)
	}

	// 1. Push 20/80 and fire the webhook: traffic shifts within 2 s.
	shifted := repo.commit("greeter: shift 80% to v2", map[string]string{"mesh/mesh.cue": e2eMesh(v1, v2, 20, 80)})
	if code := postHook(t, m, secret); code != http.StatusAccepted {
		t.Fatalf("webhook: %d, want 202", code)
	}
	took := waitFor(t, 2*time.Second, "traffic to shift to v2", func() bool {
		_, b, _ := split(t, client, 20)
		return b >= 10
	})
	t.Logf("webhook → traffic shifted in %v", took)
	a, b, f := split(t, client, 1000)
	t.Logf("at 20/80 over 1000 RPCs: v1=%d v2=%d failed=%d", a, b, f)
	if f != 0 || b < 740 || b > 860 {
		t.Errorf("at 20/80: v1=%d v2=%d failed=%d, want v2 in [740, 860]", a, b, f)
	}
	var st apiv1.Status
	getStatus(t, m, &st)
	if st.Live == nil || st.Live.ID != shifted || !st.Ready {
		t.Fatalf("status live = %+v ready=%v, want %s", st.Live, st.Ready, shifted)
	}
	// 1b. Weights-only pushes (25/75, then back to 20/80): both clusters
	// exist already, so RDS alone is re-sent and the other types stay
	// ACKed at older revisions; yet the proxy runs the newest one, and the
	// API and `gitmesh status` must say so.
	for _, w := range [][2]int{{25, 75}, {20, 80}} {
		shifted = repo.commit(fmt.Sprintf("greeter: %d/%d", w[0], w[1]), map[string]string{"mesh/mesh.cue": e2eMesh(v1, v2, w[0], w[1])})
		postHook(t, m, secret)
		waitFor(t, 5*time.Second, "the proxy to be SYNCED at "+shifted[:12], func() bool {
			var px apiv1.Proxies
			getJSONT(t, base+"/api/v1/proxies", &px)
			if len(px.Proxies) != 1 || px.Proxies[0].Status != apiv1.Synced || px.Proxies[0].Revision != shifted {
				return false
			}
			// The push is done once RDS is ACKed at the new revision: an
			// Apply publishes the revision a moment before its responses
			// go out, so SYNCED alone can be seen in between.
			for _, ts := range px.Proxies[0].Types {
				if ts.TypeURL == resource.RouteType {
					return ts.AckedRevision == shifted
				}
			}
			return false
		})
	}
	var px apiv1.Proxies
	getJSONT(t, base+"/api/v1/proxies", &px)
	for _, ts := range px.Proxies[0].Types {
		if (ts.TypeURL == resource.RouteType) != (ts.AckedRevision == shifted) {
			t.Fatalf("after a weights-only push only RDS should be ACKed at %s: %+v", shifted, px.Proxies[0].Types)
		}
	}
	if _, out, _ := runCLI(t, "status", "--server", base); !regexp.MustCompile(`e2e-1 .* ` + shifted[:12] + `\n`).MatchString(out) {
		t.Fatalf("gitmesh status does not show the proxy at %s:\n%s", shifted[:12], out)
	}
	assertStatusRoundTrip(t, base)

	// 2. A webhook with a bad signature gets 401 and triggers nothing.
	pending := repo.commit("greeter: 50/50 (not fetched yet)", map[string]string{"mesh/mesh.cue": e2eMesh(v1, v2, 50, 50)})
	if code := postHook(t, m, "not-the-secret"); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d, want 401", code)
	}
	time.Sleep(500 * time.Millisecond)
	getStatus(t, m, &st)
	if st.Live.ID != shifted {
		t.Fatalf("a badly signed webhook triggered a fetch: live is %s", st.Live.ID)
	}
	_ = pending

	// 3. An invalid commit: reported with file:line:col, never pushed, no
	// NACK loop, traffic unchanged.
	pushesBefore := metric(t, base, "gitmesh_xds_pushes_total")
	bad := repo.commit("greeter: weights that do not add up", map[string]string{"mesh/mesh.cue": e2eMesh(v1, v2, 20, 70)})
	postHook(t, m, secret)
	waitFor(t, 5*time.Second, "the bad commit to be rejected", func() bool {
		getStatus(t, m, &st)
		return st.LastAttempt != nil && st.LastAttempt.Revision.ID == bad
	})
	at := st.LastAttempt
	if at.Result != "failed" || at.FailedStep != "check" || len(at.Diagnostics) == 0 {
		t.Fatalf("bad commit attempt = %+v", at)
	}
	if got, want := at.Diagnostics[0].Error(), "mesh.cue:15:3: services.greeter.routes[0].to: weights sum to 90, want 100"; got != want {
		t.Errorf("finding = %q, want %q", got, want)
	}
	if st.Ready || st.Live.ID != shifted {
		t.Errorf("after the bad commit: ready=%v live=%s, want not ready and %s still live", st.Ready, st.Live.ID, shifted)
	}
	time.Sleep(time.Second)
	if after := metric(t, base, "gitmesh_xds_pushes_total"); after != pushesBefore {
		t.Errorf("pushes went from %v to %v after a rejected commit", pushesBefore, after)
	}
	if _, b, f := split(t, client, 200); f != 0 || b < 130 || b > 190 {
		t.Errorf("traffic changed after the bad commit: v2=%d/200 failed=%d", b, f)
	}

	// 4. A client that NACKs shows as NACKED with its error text.
	nackWithText(t, m.XDSAddr(), "proxyless/default/client/v1/nacker", "listener rejected by e2e test")
	waitFor(t, 5*time.Second, "the NACK to show in /api/v1/proxies", func() bool {
		_, body := httpGet(t, base+"/api/v1/proxies")
		return strings.Contains(body, `"status": "NACKED"`) && strings.Contains(body, "listener rejected by e2e test")
	})
	// A failed attempt with findings and a NACK with its text: every field
	// of it survives `gitmesh status`'s decoding.
	assertStatusRoundTrip(t, base)

	// 5. Nothing on the status port leaks the webhook secret.
	for _, path := range []string{"/api/v1/status", "/api/v1/proxies", "/metrics", "/healthz", "/readyz"} {
		_, body := httpGet(t, base+path)
		if strings.Contains(body, secret) {
			t.Errorf("%s leaks the webhook secret", path)
		}
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(method, base+"/api/v1/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /api/v1/status = %d, want 405", method, resp.StatusCode)
		}
	}

	// 6. Stop Git and gitmesh; a new gitmesh on the same state dir serves
	// the last good config with the same versions.
	var before apiv1.Proxies
	getJSONT(t, base+"/api/v1/proxies", &before)
	stop()
	repo.stop()
	m2, _ := startServe(t, cfg, logs)
	base2 := "http://" + m2.HTTPAddr()
	waitFor(t, 10*time.Second, "readyz after restart", func() bool { code, _ := httpGet(t, base2+"/readyz"); return code == 200 })
	getJSONT(t, base2+"/api/v1/status", &st)
	if st.Live == nil || st.Live.ID != shifted || !st.Live.Restored {
		t.Fatalf("after restart without Git: live = %+v, want %s restored", st.Live, shifted)
	}
	client2 := xdsClient(t, m2.XDSAddr(), "proxyless/default/client/v1/e2e-2", "greeter:50051")
	if _, b, f := split(t, client2, 200); f != 0 || b < 130 || b > 190 {
		t.Errorf("after restart: v2=%d/200 failed=%d, want the 20/80 split", b, f)
	}
	var after apiv1.Proxies
	getJSONT(t, base2+"/api/v1/proxies", &after)
	if v0, v1 := ackedVersions(before, "e2e-1"), ackedVersions(after, "e2e-2"); v0 == "" || v0 != v1 {
		t.Errorf("versions after restart %q, before %q: want identical", v1, v0)
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("logs contain the webhook secret")
	}
	_ = good
}

func getJSONT(t *testing.T, url string, v any) {
	t.Helper()
	if err := getJSON(context.Background(), url, v); err != nil {
		t.Fatal(err)
	}
}

// ackedVersions joins the ACKed versions of the proxy whose node id ends in
// suffix, by type, so two runs can be compared.
func ackedVersions(p apiv1.Proxies, suffix string) string {
	var parts []string
	for _, px := range p.Proxies {
		if strings.HasSuffix(px.NodeID, suffix) {
			for _, ts := range px.Types {
				parts = append(parts, ts.TypeURL+"="+ts.AckedVersion)
			}
		}
	}
	return strings.Join(parts, ",")
}

// metric reads one unlabelled counter (summed over labels) from /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := httpGet(t, base+"/metrics")
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			sum += v
		}
	}
	return sum
}

// listenerStream is a raw ADS client (a real gRPC stream to our server)
// that asks for listeners as node and returns the stream with the first
// response, or the error the server ended the stream with.
func listenerStream(t *testing.T, addr, node string) (discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, *discoveryv3.DiscoveryResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resource.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	return stream, resp, err
}

// nackWithText rejects the listeners it gets with the given text, the way
// a proxy NACKs config it cannot use.
func nackWithText(t *testing.T, addr, node, text string) {
	t.Helper()
	stream, resp, err := listenerStream(t, addr, node)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{
		Node: &corev3.Node{Id: node}, TypeUrl: resource.ListenerType, ResponseNonce: resp.GetNonce(),
		ErrorDetail: &status.Status{Code: 3, Message: text},
	}); err != nil {
		t.Fatal(err)
	}
}
