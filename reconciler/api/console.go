package api

import (
	"net/http"

	"github.com/gitmesh/gitmesh/internal/check"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/graph"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema/model"
)

// LiveSource is what the console's endpoints read besides the status:
// the live revision's model and bundles and the applied revisions;
// *reconciler.Reconciler is one. The methods return what the reconciler
// serves, never a copy it could disagree with.
type LiveSource interface {
	LiveMesh() (revision string, m *model.Mesh)
	LiveBundles() (revision string, live *render.Bundle, prevRevision string, prev *render.Bundle)
	Revisions() []apiv1.Revision
	// TestResults returns the traffic test verdicts the reconciler's
	// pipeline computed: the live revision's, and the newest failed
	// attempt's when it ran its tests.
	TestResults() (live, failed *apiv1.TestRun)
}

// consoleRoutes registers the read-only endpoints the console reads.
func consoleRoutes(mux *http.ServeMux, o Options) {
	mux.HandleFunc("GET /api/v1/graph", func(w http.ResponseWriter, r *http.Request) {
		rev, m := o.Live.LiveMesh()
		g := graph.Build(m, o.Proxies.Proxies(), graph.Options{Revision: rev, TracesURL: o.TracesURLTemplate})
		if o.Rates != nil {
			rates, err := o.Rates.EdgeRates(r.Context())
			graph.AddRates(&g, rates, err)
		}
		writeJSON(w, http.StatusOK, g)
	})
	mux.HandleFunc("GET /api/v1/revisions", func(w http.ResponseWriter, _ *http.Request) {
		st := o.Status.Status()
		resp := apiv1.Revisions{Live: st.Live, Applied: o.Live.Revisions(), RepoURLTemplate: o.RepoURLTemplate}
		if a := st.LastAttempt; a != nil && a.Result == apiv1.AttemptFailed {
			resp.Failed = a
			for _, d := range a.Diagnostics {
				resp.Findings = append(resp.Findings, apiv1.Finding{Diagnostic: d,
					Link: FindingLink(o.RepoURLTemplate, o.RepoPath, a.Revision.ID, d.Pos)})
			}
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("GET /api/v1/tests", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, tests(o))
	})
	mux.HandleFunc("GET /api/v1/proxies/{node}/config", func(w http.ResponseWriter, r *http.Request) {
		class, ok := proxyClass(w, r, o.Proxies)
		if !ok {
			return
		}
		_, live, _, _ := o.Live.LiveBundles()
		var p *render.Proxy
		if live != nil {
			p = live.Proxy(class)
		}
		if p == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "class " + class + " has no rendered config"})
			return
		}
		dump, err := render.ConfigDump(p)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(dump)
	})
	mux.HandleFunc("GET /api/v1/proxies/{node}/diff", func(w http.ResponseWriter, r *http.Request) {
		class, ok := proxyClass(w, r, o.Proxies)
		if !ok {
			return
		}
		rev, live, prevRev, prev := o.Live.LiveBundles()
		resp := ProxyDiff{NodeID: r.PathValue("node"), Class: class, Revision: rev, PreviousRevision: prevRev, Types: []check.TypeDiff{}}
		switch {
		case live == nil:
			resp.Note = "the live revision was restored from disk and has not been rendered since"
		case prev == nil:
			resp.Note = "no previous revision was applied since gitmesh started"
		default:
			g, changed := check.ClassDiff(prev.Proxy(class), live.Proxy(class))
			if !changed {
				resp.Note = "the last revision changed nothing for this class"
			}
			resp.Change = g.Change
			resp.Types = append(resp.Types, g.Types...)
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// tests is GET /api/v1/tests: the reconciler's verdicts, each run shown
// only while it describes what the status says (the live revision, the
// newest failed attempt), with links into the repository browser.
func tests(o Options) apiv1.Tests {
	st := o.Status.Status()
	live, failed := o.Live.TestResults()
	resp := apiv1.Tests{RepoURLTemplate: o.RepoURLTemplate}
	switch {
	case st.Live == nil:
		resp.Note = "nothing served yet"
	case live == nil || live.Revision != st.Live.ID:
		resp.Note = "the live revision was restored from disk; its tests run when a revision is next loaded (gitmesh validate runs them now)"
	default:
		resp.Live = withLinks(live, o)
	}
	if a := st.LastAttempt; failed != nil && a != nil && a.Result == apiv1.AttemptFailed && a.Revision.ID == failed.Revision {
		resp.Failed = withLinks(failed, o)
	}
	return resp
}

// withLinks copies run with each test's repository link filled in.
func withLinks(run *apiv1.TestRun, o Options) *apiv1.TestRun {
	c := *run
	c.Tests = make([]apiv1.TestResult, len(run.Tests))
	for i, t := range run.Tests {
		t.Link = FindingLink(o.RepoURLTemplate, o.RepoPath, run.Revision, t.Pos)
		c.Tests[i] = t
	}
	return &c
}

// ProxyDiff is GET /api/v1/proxies/{node}/diff: what the last revision
// changed for the proxy's class, the semantic diff `gitmesh check`
// prints. Note says why there is nothing to compare.
type ProxyDiff struct {
	NodeID           string           `json:"nodeId"`
	Class            string           `json:"class"`
	Revision         string           `json:"revision"`
	PreviousRevision string           `json:"previousRevision,omitempty"`
	Change           string           `json:"change,omitempty"`
	Types            []check.TypeDiff `json:"types"`
	Note             string           `json:"note,omitempty"`
}

// proxyClass finds the class of the connected proxy named by the path
// (its node id, URL-escaped: node ids contain slashes), or answers 404.
func proxyClass(w http.ResponseWriter, r *http.Request, ps ProxySource) (string, bool) {
	node := r.PathValue("node")
	for _, p := range ps.Proxies() {
		if p.NodeID == node {
			return p.Class, true
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no connected proxy " + node})
	return "", false
}
