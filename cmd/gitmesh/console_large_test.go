package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gitmesh/gitmesh/internal/meshgen"
)

// writeNamespacedMesh writes meshgen's mesh of n services to dir, with
// service i in namespace ns(i % spaces): a mesh too large to draw whole.
func writeNamespacedMesh(tb testing.TB, dir string, n, spaces int) {
	tb.Helper()
	for name, f := range meshgen.Generate(n, meshgen.Options{Seed: 1}) {
		data := string(f.Data)
		for i := 0; i < n; i++ {
			if name == meshgen.ServiceFile(i) {
				head := fmt.Sprintf("services: %s: {\n", meshgen.ServiceName(i))
				data = strings.Replace(data, head, head+fmt.Sprintf("\tnamespace: \"ns%d\"\n", i%spaces), 1)
			}
		}
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestConsoleLargeMesh: a mesh of 600 services in six namespaces opens
// with every namespace collapsed into one box; expanding one draws its
// services; focusing one draws it and its neighbours; a namespace of more
// than can be drawn is a list.
func TestConsoleLargeMesh(t *testing.T) {
	p := newPage(t)
	dir := t.TempDir()
	writeNamespacedMesh(t, dir, 600, 6)
	cfg := serveConfig{dir: dir, xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 256<<20, 10*time.Minute
	m, _ := startServe(t, cfg, io.Discard)
	base := "http://" + m.HTTPAddr()
	waitFor(t, 3*time.Minute, "the mesh to be served", func() bool { code, _ := httpGet(t, base+"/readyz"); return code == 200 })

	p.do(t, chromedp.Navigate(base+"/ui/"))
	p.waitTrue(t, "the collapsed graph", `document.getElementById("graph").dataset.ready === "true"`)
	boxes := eval[[]string](t, p, `[...document.querySelectorAll("g.node")].map((n) => n.dataset.id).sort()`)
	// The ingress gateway's namespace, default, is collapsed like the rest.
	want := "group/default group/ns0 group/ns1 group/ns2 group/ns3 group/ns4 group/ns5"
	if got := strings.Join(boxes, " "); got != want {
		t.Fatalf("collapsed graph draws %s, want %s", got, want)
	}
	// Edges between namespaces are merged and counted.
	if n := eval[int](t, p, `document.querySelectorAll("g.edge").length`); n == 0 {
		t.Error("no edge between the collapsed namespaces")
	}
	p.screenshot(t, "collapsed")

	p.do(t, chromedp.Click(chromedp.CSS(`g.group[data-group="ns2"] text`)))
	p.waitTrue(t, "ns2 expanded", `document.querySelectorAll('g.node[data-id^="service/"]').length === 100`)
	p.screenshot(t, "ns2")

	p.do(t, chromedp.Click(chromedp.CSS(`g.node[data-id="service/svc00002"] rect.box`)))
	// svc00002 calls the next five services, is called by the five before
	// it (meshgen.Callees) and by the ingress gateway (it routes to the
	// first ten): twelve boxes, whatever their namespace.
	p.waitTrue(t, "svc00002 and its neighbours", `document.querySelectorAll("g.node").length === 12 && !!document.querySelector('g.node[data-id="gateway/ingress"]')`)
	p.screenshot(t, "focus")
	p.check(t)
}
