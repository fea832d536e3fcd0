package main

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gitmesh/gitmesh/internal/adsload"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/graph"
)

// bookinfoFiles is examples/bookinfo placed under dir of a repository.
func bookinfoFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	root := filepath.Join("..", "..", "examples", "bookinfo")
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[dir+"/"+filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// connectProxies opens one ADS stream per node id, each a real grpc-go
// stream that subscribes and ACKs as Envoy does (internal/adsload).
func connectProxies(t testing.TB, addr string, nodes ...string) {
	t.Helper()
	var streams []adsload.Stream
	for _, n := range nodes {
		streams = append(streams, adsload.Stream{Node: n, Mode: adsload.Envoy})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := adsload.Dial(ctx, adsload.Config{Addr: addr, Streams: streams}, func(adsload.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	d.Start(make([]uint64, len(streams)))
}

// syncedProxies counts the proxies the API reports SYNCED.
func syncedProxies(t testing.TB, base string) int {
	var px apiv1.Proxies
	getJSONT(t.(*testing.T), base+"/api/v1/proxies", &px)
	n := 0
	for _, p := range px.Proxies {
		if p.Status == apiv1.Synced {
			n++
		}
	}
	return n
}

// cropPNG writes the top height pixels of the PNG at src to dst.
func cropPNG(src, dst string, height int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return err
	}
	b := img.Bounds()
	sub := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(b.Min.X, b.Min.Y, b.Max.X, b.Min.Y+min(height, b.Dy())))
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := png.Encode(out, sub); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestConsoleBrowser drives the console in headless Chromium against a
// real serve of bookinfo from a git daemon, with real xDS streams as its
// proxies: the graph shows bookinfo and the reviews split; a NACKing proxy
// turns its node red and its text shows; a broken commit shows its
// findings as links into the repository browser; the page logs no error
// and sends nothing off loopback.
func TestConsoleBrowser(t *testing.T) {
	p := newPage(t)
	repo := newGitServer(t)
	repo.commit("bookinfo", bookinfoFiles(t, "mesh"))
	const secret = "console-webhook-secret-0123456789"
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	os.WriteFile(secretFile, []byte(secret), 0o600)
	const tmpl = "https://git.example.com/org/mesh/blob/{rev}/{file}#L{line}"
	cfg := serveConfig{
		repo: repo.url(), branch: "main", path: "mesh",
		xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour, webhookSecretFile: secretFile,
		repoURLTemplate: tmpl, tracingURLTemplate: graph.DefaultTracesURL,
	}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
	m, _, base := serveReady(t, cfg, 20*time.Second)

	proxies := []string{
		"sidecar/default/productpage/v1/productpage-1", "sidecar/default/details/v1/details-1",
		"sidecar/default/reviews/v1/reviews-v1-1", "sidecar/default/reviews/v3/reviews-v3-1",
		"sidecar/default/ratings/v1/ratings-1", "ingress/bookinfo-gateway/ingress-1", "egress/egress/egress-1",
	}
	connectProxies(t, m.XDSAddr(), proxies...)
	waitFor(t, 20*time.Second, "every proxy SYNCED", func() bool { return syncedProxies(t, base) == len(proxies) })

	// 1. The graph: bookinfo's nodes, health from the proxies, the split.
	p.do(t, chromedp.Navigate(base+"/ui/"))
	p.waitTrue(t, "bookinfo's graph", `!!document.querySelector('g.node[data-id="service/reviews"]')`)
	ids := eval[[]string](t, p, `[...document.querySelectorAll("g.node")].map((n) => n.dataset.id).sort()`)
	want := []string{"external/books-api", "gateway/bookinfo-gateway", "gateway/egress", "service/details", "service/productpage", "service/ratings", "service/reviews"}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("graph nodes %v, want %v", ids, want)
	}
	split := eval[string](t, p, `document.querySelector('g.edge[data-id="service/productpage->service/reviews"]').textContent`)
	if !strings.Contains(split, "canary: v1 50% · v3 50%") {
		t.Errorf("productpage → reviews says %q, want the canary's 50/50 split of v1 and v3", split)
	}
	for _, id := range []string{"service/productpage", "service/reviews", "gateway/bookinfo-gateway"} {
		if cls := eval[string](t, p, fmt.Sprintf(`document.querySelector('g.node[data-id=%q]').getAttribute("class")`, id)); !strings.Contains(cls, "SYNCED") {
			t.Errorf("%s has class %q, want SYNCED", id, cls)
		}
	}
	if cls := eval[string](t, p, `document.querySelector('g.node[data-id="service/reviews"] g.version.NO-PROXY text').textContent`); cls != "v2" {
		t.Errorf("reviews' version without a proxy = %q, want v2", cls)
	}
	p.screenshot(t, "graph")

	// The layout is deterministic: a reload draws the same picture.
	drawn := eval[string](t, p, `document.querySelector("#graph svg").outerHTML`)
	p.do(t, chromedp.Reload())
	p.waitTrue(t, "the graph after a reload", `!!document.querySelector('g.node[data-id="service/reviews"]')`)
	if again := eval[string](t, p, `document.querySelector("#graph svg").outerHTML`); again != drawn {
		t.Errorf("a reload drew another graph:\n%s\n%s", drawn, again)
	}
	// Search marks matches; a namespace collapses into one box and back.
	p.do(t, chromedp.SendKeys(chromedp.CSS("#search"), "rev"))
	p.waitTrue(t, "search", `document.querySelectorAll("g.node.match").length === 1 && !!document.querySelector('g.node.match[data-id="service/reviews"]')`)
	eval[any](t, p, `(() => { const s = document.getElementById("search"); s.value = ""; s.dispatchEvent(new Event("input")); })()`)
	p.do(t, chromedp.Click(chromedp.CSS(`g.group[data-group="default"] text`)))
	p.waitTrue(t, "default collapsed", `!!document.querySelector('g.node[data-id="group/default"]') && !!document.querySelector('g.edge[data-id="group/default->external/books-api"]') && document.querySelectorAll("g.node").length === 2`)
	p.do(t, chromedp.Click(chromedp.CSS(`g.group[data-group="default"] text`)))
	p.waitTrue(t, "default expanded", `document.querySelectorAll("g.node").length === 7`)

	// 2. A proxy NACKs: its service turns red and the NACK text shows.
	const nack = "Proto constraint validation failed (console-test): unknown filter"
	nackWithText(t, m.XDSAddr(), "sidecar/default/reviews/v2/reviews-v2-1", nack)
	p.waitTrue(t, "reviews to turn red", `document.querySelector('g.node[data-id="service/reviews"]').classList.contains("NACKED")`)
	p.waitTrue(t, "the NACK text", fmt.Sprintf(`document.getElementById("problems").textContent.includes(%q)`, nack))
	if fill := eval[string](t, p, `getComputedStyle(document.querySelector('g.node[data-id="service/reviews"] rect.box')).stroke`); fill != "rgb(212, 53, 44)" {
		t.Errorf("NACKED reviews is drawn in %s, want red rgb(212, 53, 44)", fill)
	}
	shot := p.screenshot(t, "graph-nacked")
	if out := os.Getenv("GITMESH_CONSOLE_SCREENSHOT"); out != "" {
		// The README's picture: go test ./cmd/gitmesh -run TestConsoleBrowser
		// with GITMESH_CONSOLE_SCREENSHOT=$PWD/docs/console.png.
		// Cropped to the drawn part: the page below it is empty.
		if err := cropPNG(shot, out, 500); err != nil {
			t.Fatal(err)
		}
	}

	// Focus: a click on reviews leaves it and its neighbours, and links
	// its traces.
	p.do(t, chromedp.Click(chromedp.CSS(`g.node[data-id="service/reviews"] rect.box`)))
	p.waitTrue(t, "the focused view", `document.querySelectorAll("g.node").length === 3`)
	if href := eval[string](t, p, `document.querySelector("#details a").href`); href != "http://127.0.0.1:16686/search?service=reviews.default" {
		t.Errorf("traces link %q", href)
	}

	// 3. Proxies: the NACK per type, a proxy's config dump and diff.
	eval[any](t, p, `location.hash = "#proxies"`)
	p.waitTrue(t, "the proxies table", fmt.Sprintf(`!!document.getElementById("proxies") && document.getElementById("proxies").textContent.includes(%q)`, nack))
	p.do(t, chromedp.Click(chromedp.CSS(`tr[data-node="sidecar/default/productpage/v1/productpage-1"]`)))
	p.waitTrue(t, "productpage's config dump", `!!document.getElementById("config-dump") && document.getElementById("config-dump").textContent.includes("envoy.admin.v3.ClustersConfigDump")`)
	p.do(t, chromedp.Click(chromedp.CSS(`#show-diff`)))
	p.waitTrue(t, "productpage's diff", `!!document.getElementById("proxy-diff")`)
	p.screenshot(t, "proxies")

	// 4. A new revision moves the canary to 80/20: the graph's label
	// follows, and productpage's diff says what its route did.
	reviews := bookinfoFiles(t, "mesh")["mesh/services/reviews.cue"]
	reviews80 := strings.Replace(strings.Replace(reviews, `{version: "v1", weight: 50}`, `{version: "v1", weight: 80}`, 1), `{version: "v3", weight: 50}`, `{version: "v3", weight: 20}`, 1)
	// The canary's traffic test pins the split, so the commit moves it too.
	routing := bookinfoFiles(t, "mesh")["mesh/tests/routing.cue"]
	routing80 := strings.Replace(routing, `expect: to: {"reviews/v1": 50, "reviews/v3": 50}`, `expect: to: {"reviews/v1": 80, "reviews/v3": 20}`, 1)
	if routing80 == routing {
		t.Fatal("examples/bookinfo/tests/routing.cue no longer pins the 50/50 canary; update this test")
	}
	shifted := repo.commit("reviews: 80/20", map[string]string{"mesh/services/reviews.cue": reviews80, "mesh/tests/routing.cue": routing80})
	postHook(t, m, secret)
	waitFor(t, 20*time.Second, "80/20 to be live", func() bool {
		var st apiv1.Status
		getStatus(t, m, &st)
		return st.Live != nil && st.Live.ID == shifted
	})
	p.do(t, chromedp.Click(chromedp.CSS(`#show-diff`)))
	p.waitTrue(t, "productpage's diff of 80/20", `!!document.getElementById("proxy-diff") && document.getElementById("proxy-diff").textContent.includes("50→80")`)
	p.screenshot(t, "proxy-diff")
	eval[any](t, p, `location.hash = "#graph"`)
	p.do(t, chromedp.Click(chromedp.CSS(`#unfocus`)))
	p.waitTrue(t, "the 80/20 label", `document.querySelector('g.edge[data-id="service/productpage->service/reviews"]').textContent.includes("canary: v1 80% · v3 20%")`)

	// 5. A broken commit: its findings link into the repository browser.
	bad := repo.commit("reviews: send the canary to v9", map[string]string{
		"mesh/services/reviews.cue": strings.Replace(reviews, `{version: "v3", weight: 50}`, `{version: "v9", weight: 50}`, 1)})
	postHook(t, m, secret)
	waitFor(t, 20*time.Second, "the broken revision to fail", func() bool {
		var st apiv1.Status
		getStatus(t, m, &st)
		return st.LastAttempt != nil && st.LastAttempt.Revision.ID == bad && st.LastAttempt.Result == apiv1.AttemptFailed
	})
	eval[any](t, p, `location.hash = "#revisions"`)
	p.waitTrue(t, "the failed revision's findings", `document.querySelectorAll("#findings a").length > 0`)
	links := eval[[][2]string](t, p, `[...document.querySelectorAll("#findings a")].map((a) => [a.textContent, a.href])`)
	wantLink := "https://git.example.com/org/mesh/blob/" + bad + "/mesh/services/reviews.cue#L34"
	// Errors come first; bookinfo's GM0601 warning (no --credentials-dir)
	// follows.
	if len(links) == 0 || links[0][0] != "services/reviews.cue:34:6" || links[0][1] != wantLink {
		t.Errorf("finding links %q, want first services/reviews.cue:34:6 → %s", links, wantLink)
	}
	// The history: the header row and two applied revisions, newest first.
	p.waitTrue(t, "the history", `document.querySelectorAll("#history tr").length === 3`)
	if first := eval[string](t, p, `document.querySelector("#history tr:nth-child(2)").textContent`); !strings.Contains(first, "reviews: 80/20") {
		t.Errorf("newest applied revision %q, want the 80/20 commit", first)
	}
	p.screenshot(t, "revisions")

	// Drift: the report's findings (a NACKing proxy is drift).
	eval[any](t, p, `location.hash = "#drift"`)
	p.waitTrue(t, "the drift report", `!!document.getElementById("drift") && document.getElementById("drift").textContent.includes("reviews-v2-1")`)
	p.screenshot(t, "drift")

	// 6. Traffic tests: the live revision's all pass; a commit that moves
	// the canary without its test fails, and the failing test shows with
	// its link, next to the live revision's passing one.
	eval[any](t, p, `location.hash = "#tests"`)
	p.waitTrue(t, "the live revision's tests", `document.querySelectorAll("#live-tests tr.test").length > 0`)
	if n := eval[int](t, p, `document.querySelectorAll("#live-tests tr.test.passed").length`); n != bookinfoTests {
		t.Errorf("%d of the live revision's tests passed, want all %d of bookinfo's", n, bookinfoTests)
	}
	if n := eval[int](t, p, `document.querySelectorAll("#live-tests tr.test.failed").length`); n != 0 {
		t.Errorf("%d of the live revision's tests failed", n)
	}
	reviews90 := strings.Replace(strings.Replace(reviews, `{version: "v1", weight: 50}`, `{version: "v1", weight: 90}`, 1), `{version: "v3", weight: 50}`, `{version: "v3", weight: 10}`, 1)
	untested := repo.commit("reviews: 90/10, test not updated", map[string]string{"mesh/services/reviews.cue": reviews90})
	postHook(t, m, secret)
	waitFor(t, 20*time.Second, "the untested canary to fail", func() bool {
		var st apiv1.Status
		getStatus(t, m, &st)
		return st.LastAttempt != nil && st.LastAttempt.Revision.ID == untested && st.LastAttempt.Result == apiv1.AttemptFailed
	})
	p.waitTrue(t, "the failing test", `!!document.querySelector('#failed-tests tr.test.failed[data-test="others-canary"]')`)
	row := eval[[]string](t, p, `[...document.querySelector('#failed-tests tr[data-test="others-canary"]').cells].map((c) => c.textContent)`)
	if len(row) != 5 || row[0] != "failed" || row[2] != "tests/routing.cue:20:8" ||
		row[4] != "expected reviews/v1 80% reviews/v3 20%, got reviews/v1 90% reviews/v3 10%" {
		t.Errorf("failing test row %q", row)
	}
	testLink := eval[string](t, p, `document.querySelector('#failed-tests tr[data-test="others-canary"] a').href`)
	if want := "https://git.example.com/org/mesh/blob/" + untested + "/mesh/tests/routing.cue#L20"; testLink != want {
		t.Errorf("failing test links %q, want %q", testLink, want)
	}
	if n := eval[int](t, p, `document.querySelectorAll("#failed-tests tr.test.passed").length`); n != bookinfoTests-1 {
		t.Errorf("the failed revision shows %d passing tests, want %d", n, bookinfoTests-1)
	}
	if n := eval[int](t, p, `document.querySelectorAll("#live-tests tr.test.passed").length`); n != bookinfoTests {
		t.Errorf("the live revision's tests changed with a failed commit: %d passed", n)
	}
	p.screenshot(t, "tests")

	p.check(t)
}

// bookinfoTests is how many traffic tests examples/bookinfo declares.
const bookinfoTests = 14
