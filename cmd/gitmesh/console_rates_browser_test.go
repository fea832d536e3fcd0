package main

import (
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/gittest"
	"github.com/gitmesh/gitmesh/internal/promtest"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// TestConsoleBrowserRates: with --prometheus-url, the console draws the
// measured rate on productpage → reviews. The rates come the real way —
// serve's Prometheus client querying a real Prometheus — from the Envoy
// stand-in (envoyStandIn: no Envoy can run here), which reports
// productpage v1 → reviews v2 at 20 req/s with 1 error/s. That the graph
// carries a real measured split (grpc-go's, through the canary example)
// is TestPrometheusEdgeRates' graph assertion; this test is the drawing.
func TestConsoleBrowserRates(t *testing.T) {
	promtest.Binary(t)
	p := newPage(t)
	root := t.TempDir()
	gittest.WriteFiles(t, root, bookinfoFiles(t, "mesh"))

	envoy := httptest.NewServer(envoyStandIn{start: time.Now()})
	defer envoy.Close()
	prom := promtest.Start(t, promtest.Target{Job: "envoy-stand-in", Addr: strings.TrimPrefix(envoy.URL, "http://"), Path: "/stats/prometheus"})

	const window = 10 * time.Second
	cfg := serveConfig{dir: filepath.Join(root, "mesh"), xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour, prometheusURL: prom.URL, rateWindow: window}
	fc := &cobra.Command{}
	cfg.load.register(fc)
	if err := fc.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	m, _ := startServe(t, cfg, newTestWriter(t))
	base := "http://" + m.HTTPAddr()
	prom.WaitForTargets(t, 30*time.Second)
	waitFor(t, 40*time.Second, "a measured productpage → reviews edge in the graph API", func() bool {
		var g apiv1.Graph
		if err := getJSON(t.Context(), base+"/api/v1/graph", &g); err != nil {
			return false
		}
		for _, e := range g.Edges {
			if e.ID == "service/productpage->service/reviews" && e.RequestsPerSecond != nil {
				return true
			}
		}
		return false
	})
	// One more window, so the rate covers steady scrapes only.
	time.Sleep(window)

	p.do(t, chromedp.Navigate(base+"/ui/"))
	edge := `document.querySelector('g.edge[data-id="service/productpage->service/reviews"]')`
	p.waitTrue(t, "the rate label", "!!"+edge+" && "+edge+`.textContent.includes("rps")`)
	label := eval[string](t, p, edge+`.textContent`)
	got := regexp.MustCompile(`([0-9.]+) rps · ([0-9.]+) err/s`).FindStringSubmatch(label)
	if got == nil {
		t.Fatalf("productpage → reviews says %q, want its measured rate", label)
	}
	rps, _ := strconv.ParseFloat(got[1], 64)
	errs, _ := strconv.ParseFloat(got[2], 64)
	if !near(rps, 20) || !near(errs, 1) {
		t.Errorf("productpage → reviews drawn at %v rps, %v err/s; the stand-in sends 20 and 1", rps, errs)
	}
	if note := eval[string](t, p, `document.getElementById("graph-note").textContent`); !strings.Contains(note, "rates over 10s") {
		t.Errorf("graph note %q does not say the rate window", note)
	}
	p.screenshot(t, "graph-rates")
	p.check(t)
}
