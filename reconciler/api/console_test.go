package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/console"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema/model"
)

// live is what the reconciler serves for two revisions of bookinfo:
// "rev1" with reviews at 50/50, then "rev2" at 80/20, both rendered by the
// real pipeline.
type live struct {
	mesh      *model.Mesh
	prev, cur *render.Bundle
	revisions []apiv1.Revision
	// tests are the runs TestResults returns, as the reconciler keeps them.
	liveTests, failedTests *apiv1.TestRun
}

func (l *live) LiveMesh() (string, *model.Mesh) { return "rev2", l.mesh }
func (l *live) LiveBundles() (string, *render.Bundle, string, *render.Bundle) {
	return "rev2", l.cur, "rev1", l.prev
}
func (l *live) Revisions() []apiv1.Revision { return l.revisions }
func (l *live) TestResults() (*apiv1.TestRun, *apiv1.TestRun) {
	return l.liveTests, l.failedTests
}

// bookinfo renders examples/bookinfo, with reviews' canary weights
// replaced when w is not "".
func bookinfo(t *testing.T, w string) *pipeline.Result {
	t.Helper()
	root := filepath.Join("..", "..", "examples", "bookinfo")
	fsys := fstest.MapFS{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		if w != "" && rel == filepath.Join("services", "reviews.cue") {
			b = []byte(strings.Replace(strings.Replace(string(b), `{version: "v1", weight: 50}`, `{version: "v1", weight: `+w+`}`, 1),
				`{version: "v3", weight: 50}`, `{version: "v3", weight: 20}`, 1))
		}
		fsys[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res := pipeline.Run(context.Background(), pipeline.Input{Files: fsys})
	if res.Bundle == nil {
		t.Fatalf("bookinfo does not render: %s\n%v", res.Summary(), res.Diagnostics)
	}
	return res
}

const productpage = "sidecar/default/productpage/v1/productpage-1"

type oneProxy struct{}

func (oneProxy) Proxies() []apiv1.Proxy {
	return []apiv1.Proxy{{NodeID: productpage, Class: "sidecar/default/productpage/v1", Status: apiv1.Synced}}
}
func (oneProxy) Rejections() []apiv1.Rejection { return nil }
func (oneProxy) RejectionsDropped() int64      { return 0 }

// rates stands in for the Prometheus client, which is tested against a
// real Prometheus in its own package: here only the graph's use of it.
type rates struct {
	r   []apiv1.EdgeRate
	err error
}

func (r rates) EdgeRates(context.Context) ([]apiv1.EdgeRate, error) { return r.r, r.err }

func consoleHandler(t *testing.T, o Options) http.Handler {
	t.Helper()
	before, after := bookinfo(t, ""), bookinfo(t, "80")
	o.Live = &live{mesh: after.Mesh, prev: before.Bundle, cur: after.Bundle,
		revisions: []apiv1.Revision{{ID: "rev2", Short: "rev2"}, {ID: "rev1", Short: "rev1"}}}
	o.Proxies = oneProxy{}
	if o.Status == nil {
		o.Status = fakeStatus{apiv1.Status{Ready: true, Live: &apiv1.Revision{ID: "rev2"}}}
	}
	return Handler(o)
}

// TestTestsEndpoint: GET /api/v1/tests serves the reconciler's runs with
// repository links, the live one only while it is the live revision's and
// the failed one only while it is the newest failed attempt's.
func TestTestsEndpoint(t *testing.T) {
	pos := model.Pos{File: "tests/routing.cue", Line: 20, Col: 8}
	liveRun := &apiv1.TestRun{Revision: "rev2", Total: 1, Passed: 1, Tests: []apiv1.TestResult{{Name: "others-canary", Pos: pos, Passed: true, Outcome: "routed to reviews/v1 50% reviews/v3 50%"}}}
	failedRun := &apiv1.TestRun{Revision: "bad1", Total: 1, Failed: 1, Tests: []apiv1.TestResult{{Name: "others-canary", Pos: pos, Problems: []string{"expected reviews/v1 50% reviews/v3 50%, got reviews/v1 100%"}}}}
	attempt := &apiv1.Attempt{Revision: apiv1.Revision{ID: "bad1"}, Result: apiv1.AttemptFailed, FailedStep: "render"}
	o := Options{RepoURLTemplate: "https://git.example.com/org/mesh/blob/{rev}/{file}#L{line}", RepoPath: "mesh",
		Status: fakeStatus{apiv1.Status{Live: &apiv1.Revision{ID: "rev2"}, LastAttempt: attempt}}}
	// Only the runs matter here: the tests endpoint reads nothing else of
	// the live source.
	l := &live{liveTests: liveRun, failedTests: failedRun}
	o.Live, o.Proxies = l, oneProxy{}
	h := Handler(o)
	var got apiv1.Tests
	get(t, h, "/api/v1/tests", &got)
	if got.Live == nil || got.Failed == nil || got.Note != "" || got.RepoURLTemplate != o.RepoURLTemplate {
		t.Fatalf("tests: %+v", got)
	}
	if want := "https://git.example.com/org/mesh/blob/rev2/mesh/tests/routing.cue#L20"; got.Live.Tests[0].Link != want || !got.Live.Tests[0].Passed {
		t.Errorf("live test %+v, want passed with link %s", got.Live.Tests[0], want)
	}
	if f := got.Failed.Tests[0]; f.Passed || f.Link != "https://git.example.com/org/mesh/blob/bad1/mesh/tests/routing.cue#L20" || len(f.Problems) != 1 {
		t.Errorf("failed test %+v", f)
	}
	if liveRun.Tests[0].Link != "" {
		t.Error("the handler wrote its links into the reconciler's run")
	}

	// A newer attempt succeeded elsewhere (no failed attempt), and the
	// live revision was restored from disk: neither run is shown.
	o.Status = fakeStatus{apiv1.Status{Live: &apiv1.Revision{ID: "rev3", Restored: true}, LastAttempt: &apiv1.Attempt{Revision: apiv1.Revision{ID: "rev3"}, Result: apiv1.AttemptApplied}}}
	var again apiv1.Tests
	get(t, Handler(o), "/api/v1/tests", &again)
	if again.Live != nil || again.Failed != nil || !strings.Contains(again.Note, "restored from disk") {
		t.Errorf("stale runs shown: %+v", again)
	}
}

func TestGraphEndpoint(t *testing.T) {
	h := consoleHandler(t, Options{TracesURLTemplate: "http://jaeger:16686/search?service={service}.{namespace}"})
	var g apiv1.Graph
	get(t, h, "/api/v1/graph", &g)
	if g.Revision != "rev2" || len(g.Nodes) != 7 || g.Rates != nil {
		t.Fatalf("graph: revision %q, %d nodes, rates %+v", g.Revision, len(g.Nodes), g.Rates)
	}
	for _, n := range g.Nodes {
		if n.ID == "service/productpage" && (n.Health != apiv1.HealthSynced || n.TracesURL != "http://jaeger:16686/search?service=productpage.default") {
			t.Errorf("productpage: %+v", n)
		}
	}

	// A Prometheus error is in the graph, never a failed graph.
	h = consoleHandler(t, Options{Rates: rates{err: errors.New("prometheus: connection refused")}})
	get(t, h, "/api/v1/graph", &g)
	if g.Rates == nil || g.Rates.Error != "prometheus: connection refused" || len(g.Edges) == 0 {
		t.Errorf("graph with a failing rates source: rates %+v, %d edges", g.Rates, len(g.Edges))
	}
	r := apiv1.EdgeRate{Source: apiv1.Workload{Service: "productpage"}, Destination: apiv1.Workload{Service: "reviews", Version: "v1"}, RequestsPerSecond: 2}
	h = consoleHandler(t, Options{Rates: rates{r: []apiv1.EdgeRate{r}}})
	get(t, h, "/api/v1/graph", &g)
	for _, e := range g.Edges {
		if got := e.RequestsPerSecond != nil; got != (e.ID == "service/productpage->service/reviews") {
			t.Errorf("edge %s: rate %v", e.ID, e.RequestsPerSecond)
		}
	}
}

// TestProxyConfigAndDiff: the config dump is render's ConfigDump of the
// proxy's class, and the diff is check's: productpage's route to reviews
// changed its weights.
func TestProxyConfigAndDiff(t *testing.T) {
	h := consoleHandler(t, Options{})
	node := "/api/v1/proxies/" + strings.ReplaceAll(productpage, "/", "%2F")
	var dump struct {
		Configs []map[string]any `json:"configs"`
	}
	get(t, h, node+"/config", &dump)
	if len(dump.Configs) != 4 || dump.Configs[0]["@type"] != "type.googleapis.com/envoy.admin.v3.ClustersConfigDump" {
		t.Errorf("config dump: %v", dump.Configs)
	}
	var d ProxyDiff
	get(t, h, node+"/diff", &d)
	if d.Class != "sidecar/default/productpage/v1" || d.Change != "changed" || d.PreviousRevision != "rev1" {
		t.Fatalf("diff: %+v", d)
	}
	b, _ := json.Marshal(d.Types)
	if !strings.Contains(string(b), "weights") || !strings.Contains(string(b), "50→80") {
		t.Errorf("diff does not say the weights moved to 80/20: %s", b)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/proxies/sidecar%2Fnobody/config", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("config of an unknown proxy: %d, want 404", rec.Code)
	}
}

func TestRevisionsLinksFindings(t *testing.T) {
	failed := &apiv1.Attempt{Revision: apiv1.Revision{ID: "bad1"}, Result: apiv1.AttemptFailed, FailedStep: "check",
		Diagnostics: model.Diagnostics{{Code: "GM0101", Severity: model.SeverityError, Pos: model.Pos{File: "services/reviews.cue", Line: 12, Col: 3}, Message: "m"}}}
	h := consoleHandler(t, Options{RepoURLTemplate: "https://git.example.com/org/mesh/blob/{rev}/{file}#L{line}", RepoPath: "mesh",
		Status: fakeStatus{apiv1.Status{Live: &apiv1.Revision{ID: "rev2"}, LastAttempt: failed}}})
	var r apiv1.Revisions
	get(t, h, "/api/v1/revisions", &r)
	if len(r.Applied) != 2 || r.Failed == nil || len(r.Findings) != 1 {
		t.Fatalf("revisions: %+v", r)
	}
	if want := "https://git.example.com/org/mesh/blob/bad1/mesh/services/reviews.cue#L12"; r.Findings[0].Link != want {
		t.Errorf("link %q, want %q", r.Findings[0].Link, want)
	}
}

// TestConsoleReadOnly: the console and every endpoint it reads answer GET
// and HEAD only; every other method is refused with 405.
func TestConsoleReadOnly(t *testing.T) {
	h := consoleHandler(t, Options{})
	node := "/api/v1/proxies/" + strings.ReplaceAll(productpage, "/", "%2F")
	paths := []string{"/ui/", "/ui/app.js", "/ui/graph.js", "/ui/console.css", "/api/v1/graph", "/api/v1/revisions",
		node + "/config", node + "/diff", "/api/v1/status", "/api/v1/proxies", "/api/v1/tests"}
	for _, p := range paths {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(m, p, nil))
			if rec.Code != http.StatusOK {
				t.Errorf("%s %s: %d, want 200", m, p, rec.Code)
			}
		}
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(m, p, strings.NewReader("{}")))
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, p, rec.Code)
			}
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q, want a redirect to /ui/", rec.Code, rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/", nil))
	if got := rec.Header().Get("Content-Security-Policy"); got != console.CSP || !strings.HasPrefix(got, "default-src 'self'") {
		t.Errorf("CSP %q", got)
	}
}
