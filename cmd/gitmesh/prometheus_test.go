package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/promtest"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/render/bootstrap"
)

// TestPrometheusEdgeRates runs the grpc-canary example proxyless on
// loopback (its real client and greeter programs, with --metrics-addr)
// against serve's real xDS server, lets a real Prometheus scrape them,
// gitmesh's /metrics and an Envoy stand-in, and checks that serve's rates
// source (--prometheus-url) reports the canary's weights as the measured
// split, and source and destination from Envoy's metric names. It then
// runs every query of deploy/grafana against the same Prometheus.
func TestPrometheusEdgeRates(t *testing.T) {
	promtest.Binary(t) // skip (or fail under GITMESH_REQUIRE_PROMETHEUS) before building anything
	if testing.Short() {
		t.Skip("builds the example and runs Prometheus for ~30s")
	}
	bin := buildCanary(t)
	ports := freeLoopbackPorts(t, 6)
	greeterV1, greeterV2, metricsV1, metricsV2, metricsClient, httpPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]

	// The example's mesh with the greeters on free ports and 70/30 weights,
	// so the split tells the versions apart well within the tolerance.
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "grpc-canary", "mesh.cue"))
	if err != nil {
		t.Fatal(err)
	}
	mesh := strings.NewReplacer(
		"50061", fmt.Sprint(greeterV1), "50062", fmt.Sprint(greeterV2),
		`weight: 90`, `weight: 70`, `weight: 10`, `weight: 30`,
	).Replace(string(raw))
	if !strings.Contains(mesh, "weight: 70") || !strings.Contains(mesh, "weight: 30") {
		t.Fatalf("the example's weights moved; update this test:\n%s", raw)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte(mesh), 0o600); err != nil {
		t.Fatal(err)
	}

	envoy := httptest.NewServer(envoyStandIn{start: time.Now()})
	defer envoy.Close()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	prom := promtest.Start(t,
		promtest.Target{Job: "gitmesh", Addr: httpAddr},
		promtest.Target{Job: "grpc-canary", Addr: fmt.Sprintf("127.0.0.1:%d", metricsV1)},
		promtest.Target{Job: "grpc-canary", Addr: fmt.Sprintf("127.0.0.1:%d", metricsV2)},
		promtest.Target{Job: "grpc-canary", Addr: fmt.Sprintf("127.0.0.1:%d", metricsClient)},
		promtest.Target{Job: "envoy-stand-in", Addr: strings.TrimPrefix(envoy.URL, "http://"), Path: "/stats/prometheus"},
	)

	const window = 10 * time.Second
	cfg := serveConfig{dir: dir, xdsAddr: "127.0.0.1:0", httpAddr: httpAddr, xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour, prometheusURL: prom.URL, rateWindow: window}
	fc := &cobra.Command{}
	cfg.load.register(fc)
	if err := fc.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	m, _ := startServe(t, cfg, newTestWriter(t))
	if m.rates == nil {
		t.Fatal("serve with --prometheus-url has no rates source")
	}

	boot, err := bootstrap.GRPC(bootstrap.Options{NodeID: "proxyless/default/client/v1/prom-test", XDSAddress: m.XDSAddr()})
	if err != nil {
		t.Fatal(err)
	}
	bootFile := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(bootFile, boot, 0o600); err != nil {
		t.Fatal(err)
	}
	runProgram(t, filepath.Join(bin, "greeter"), nil, "--version", "v1", "--port", fmt.Sprint(greeterV1), "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsV1))
	runProgram(t, filepath.Join(bin, "greeter"), nil, "--version", "v2", "--port", fmt.Sprint(greeterV2), "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsV2))
	runProgram(t, filepath.Join(bin, "client"), []string{"GRPC_XDS_BOOTSTRAP=" + bootFile},
		"--target", "xds:///greeter:50051", "--rate", "100", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsClient))
	prom.WaitForTargets(t, 30*time.Second)

	client := apiv1.Workload{Namespace: "default", Service: "client", Version: "v1"}
	v1 := apiv1.Workload{Namespace: "default", Service: "greeter", Version: "v1"}
	v2 := apiv1.Workload{Namespace: "default", Service: "greeter", Version: "v2"}
	// Once both versions show up, wait one more window, so the one measured
	// holds steady traffic and not the client's start (the first RPCs fail
	// until xDS and the greeters are up).
	var rates []apiv1.EdgeRate
	waitFor(t, 60*time.Second, "both greeter versions in EdgeRates", func() bool {
		rates, err = m.rates.EdgeRates(context.Background())
		return err == nil && find(rates, client, v1) != nil && find(rates, client, v2) != nil
	})
	time.Sleep(window + 2*time.Second)
	waitFor(t, 10*time.Second, "fresh rates", func() bool {
		rates, err = m.rates.EdgeRates(context.Background())
		return err == nil
	})
	r1, r2 := find(rates, client, v1), find(rates, client, v2)
	if r1 == nil || r2 == nil {
		t.Fatalf("EdgeRates lost an edge: %+v", rates)
	}
	total := r1.RequestsPerSecond + r2.RequestsPerSecond
	share := 100 * r2.RequestsPerSecond / total
	t.Logf("measured: v1 %.1f req/s, v2 %.1f req/s: v2 %.1f%% (weights 70/30)", r1.RequestsPerSecond, r2.RequestsPerSecond, share)
	if math.Abs(share-30) > 10 {
		t.Errorf("v2 got %.1f%% of the requests, want 30%% ±10 points; rates %+v", share, rates)
	}
	if total < 30 {
		t.Errorf("client → greeter at %.1f req/s, want about 100 (the client's --rate)", total)
	}
	if r1.ErrorsPerSecond != 0 || r2.ErrorsPerSecond != 0 {
		t.Errorf("errors on a healthy canary: %+v %+v", r1, r2)
	}
	if r1.Window != window {
		t.Errorf("window %v, want %v", r1.Window, window)
	}

	// Envoy's metric names, from the stand-in.
	pp := apiv1.Workload{Namespace: "default", Service: "productpage", Version: "v1"}
	reviews := apiv1.Workload{Namespace: "default", Service: "reviews", Version: "v2"}
	edge := apiv1.Workload{Service: "edge"}
	ppAll := apiv1.Workload{Namespace: "default", Service: "productpage"}
	if r := find(rates, pp, reviews); r == nil || !near(r.RequestsPerSecond, 20) || !near(r.ErrorsPerSecond, 1) {
		t.Errorf("productpage v1 → reviews v2 = %+v, want 20 req/s and 1 error/s", r)
	}
	if r := find(rates, edge, ppAll); r == nil || !near(r.RequestsPerSecond, 4) || r.ErrorsPerSecond != 0 {
		t.Errorf("edge → productpage = %+v, want 4 req/s and no errors", r)
	}
	for _, r := range rates {
		if r.Destination.Service == "" || r.Source.Service == "" || r.Destination.Service == "ratings" || r.Destination == pp {
			t.Errorf("EdgeRates has an edge it must not: %+v (an inbound cluster, or a proxy without gitmesh stats tags)", r)
		}
	}

	// The console's view of the same traffic: serve's GET /api/v1/graph
	// (what the console draws) carries the measured split on the
	// client → greeter edge, queried through --prometheus-url.
	t.Run("graph", func(t *testing.T) { checkGraphRates(t, "http://"+httpAddr, window) })

	t.Run("dashboards", func(t *testing.T) { checkDashboards(t, prom, dir) })
}

// checkGraphRates asserts the graph API puts the canary's measured 70/30
// split on the client → greeter edge, with the rate window it used.
func checkGraphRates(t *testing.T, base string, window time.Duration) {
	var g apiv1.Graph
	getJSONT(t, base+"/api/v1/graph", &g)
	if g.Rates == nil || g.Rates.Error != "" || g.Rates.WindowSeconds != window.Seconds() {
		t.Fatalf("graph rates %+v, want measured over %v", g.Rates, window)
	}
	var edge *apiv1.Edge
	for i := range g.Edges {
		if g.Edges[i].ID == "service/client->service/greeter" {
			edge = &g.Edges[i]
		}
	}
	if edge == nil || edge.RequestsPerSecond == nil || edge.ErrorsPerSecond == nil {
		t.Fatalf("graph has no measured client → greeter edge: %+v", g.Edges)
	}
	by := map[string]float64{}
	for _, v := range edge.Measured {
		by[v.Version] = v.RequestsPerSecond
	}
	total := *edge.RequestsPerSecond
	t.Logf("graph: client → greeter %.1f req/s, measured %+v", total, edge.Measured)
	if len(by) != 2 || total < 30 || math.Abs(by["v1"]+by["v2"]-total) > 0.01*total {
		t.Fatalf("client → greeter measured %+v of %.1f req/s, want v1 and v2 summing to about 100", edge.Measured, total)
	}
	if share := 100 * by["v2"] / total; math.Abs(share-30) > 10 {
		t.Errorf("graph: v2 got %.1f%% of client → greeter, want 30%% ±10 points", share)
	}
	if *edge.ErrorsPerSecond != 0 {
		t.Errorf("graph: %.2f errors/s on a healthy canary", *edge.ErrorsPerSecond)
	}
}

// near is a rate within 15% of want: Prometheus extrapolates rate() to the
// window's edges.
func near(got, want float64) bool { return math.Abs(got-want) <= 0.15*want }

func find(rates []apiv1.EdgeRate, src, dst apiv1.Workload) *apiv1.EdgeRate {
	for i := range rates {
		if rates[i].Source == src && rates[i].Destination == dst {
			return &rates[i]
		}
	}
	return nil
}

// buildCanary builds the grpc-canary client and greeter into a temp dir.
func buildCanary(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("go", "build", "-o", out, "./examples/grpc-canary/client", "./examples/grpc-canary/greeter")
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the grpc-canary example: %v\n%s", err, b)
	}
	return out
}

// runProgram starts a program for the rest of the test, its output in the test log.
func runProgram(t *testing.T, bin string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	w := newTestWriter(t)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
}

// freeLoopbackPorts returns n distinct loopback ports that were free a
// moment ago: the programs and Prometheus' config need them up front.
func freeLoopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// testWriter collects a program's output and prints it in the test log
// only if the test failed.
type testWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{}
	t.Cleanup(func() {
		if t.Failed() {
			w.mu.Lock()
			t.Logf("output:\n%s", w.buf.String())
			w.mu.Unlock()
		}
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
