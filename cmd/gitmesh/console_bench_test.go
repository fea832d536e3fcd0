package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gitmesh/gitmesh/internal/meshgen"
)

// BenchmarkConsoleFirstView1000 is the browser side of the console's
// first view of a 1,000-service mesh (internal/meshgen) served by a real
// serve: from navigation to the graph view drawn, in headless Chromium.
// The Go side (graph and JSON) is reconciler/graph's BenchmarkGraph1000.
// Run it with: go test ./cmd/gitmesh -run '^$' -bench ConsoleFirstView.
func BenchmarkConsoleFirstView1000(b *testing.B) {
	p := newPage(b)
	dir := b.TempDir()
	for name, f := range meshgen.Generate(1000, meshgen.Options{Seed: 1}) {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cfg := serveConfig{dir: dir, xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: b.TempDir(), interval: time.Hour}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 256<<20, 10*time.Minute
	m, _ := startServe(b, cfg, io.Discard)
	base := "http://" + m.HTTPAddr()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the 1,000-service mesh was not served within 5 minutes")
		}
	}
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		p.do(b, chromedp.Navigate(base+"/ui/"))
		p.waitTrue(b, "the first view", `document.getElementById("graph").dataset.ready === "true"`)
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/first-view")
	nodes := eval[int](b, p, `document.querySelectorAll("#graph .row, #graph g.node").length`)
	if nodes == 0 {
		b.Fatal("the first view shows no node")
	}
	p.screenshot(b, "first-view-1000")
	p.check(b)
}
