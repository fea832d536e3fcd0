// Package api is gitmesh's HTTP surface on the status port: the read-only
// status API, health and readiness probes, Prometheus metrics, and the push
// webhooks. Nothing here can change the mesh: read endpoints answer GET and
// HEAD only, and webhooks can only ask for a fetch.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/console"
	"github.com/gitmesh/gitmesh/reconciler/drift"
)

// StatusSource is what the API reads; *reconciler.Reconciler is one.
type StatusSource interface {
	Status() apiv1.Status
	Ready() bool
}

// ProxySource reports proxies' sync state; *xds.Server is one.
type ProxySource interface {
	Proxies() []apiv1.Proxy
	Rejections() []apiv1.Rejection
	RejectionsDropped() int64
}

// DriftSource serves the latest drift report; *drift.Runner is one.
type DriftSource interface {
	Report() *drift.Report
	Publish() apiv1.DriftPublish
}

// RatesSource measures traffic between workloads (a Prometheus client);
// the console's graph puts the rates on its edges. EdgeRates bounds its
// own time (promrates answers within its query timeout whatever the
// caller's context says, because callers share one answer), so the graph
// does not add a deadline of its own.
type RatesSource interface {
	EdgeRates(ctx context.Context) ([]apiv1.EdgeRate, error)
}

// Options wire the handler.
type Options struct {
	Status   StatusSource
	Proxies  ProxySource
	Gatherer prometheus.Gatherer
	// Drift serves GET /api/v1/drift; nil answers 404.
	Drift DriftSource
	// Kubernetes returns discovery's health for the status; nil (or a nil
	// result) leaves it out.
	Kubernetes func() *apiv1.Kubernetes
	// Rates puts measured request and error rates on the graph's edges;
	// nil leaves them out.
	Rates RatesSource
	// Live serves the console (/ui/) and its endpoints (graph, revisions,
	// a proxy's config and diff); nil serves neither.
	Live LiveSource
	// RepoURLTemplate links findings to the repository browser
	// (--repo-url-template); RepoPath is the mesh's directory in the
	// repository, which finding positions are relative to.
	RepoURLTemplate, RepoPath string
	// TracesURLTemplate links services to their traces when mesh.tracing
	// is set (--tracing-url-template).
	TracesURLTemplate string
	// Hooks serves POST /hooks/...; nil disables webhooks.
	Hooks  http.Handler
	Logger *slog.Logger
}

// Handler returns the HTTP handler for the status port.
func Handler(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		resp := o.Status.Status()
		if o.Kubernetes != nil {
			resp.Kubernetes = o.Kubernetes()
		}
		if o.Drift != nil {
			p := o.Drift.Publish()
			resp.Drift = &p
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("GET /api/v1/proxies", func(w http.ResponseWriter, _ *http.Request) {
		resp := apiv1.Proxies{Proxies: o.Proxies.Proxies(), Rejections: o.Proxies.Rejections(),
			RejectionsDropped: o.Proxies.RejectionsDropped()}
		if live := o.Status.Status().Live; live != nil {
			resp.Revision = live.ID
		}
		if resp.Proxies == nil {
			resp.Proxies = []apiv1.Proxy{}
		}
		if resp.Rejections == nil {
			resp.Rejections = []apiv1.Rejection{}
		}
		writeJSON(w, http.StatusOK, resp)
	})
	if o.Drift != nil {
		mux.HandleFunc("GET /api/v1/drift", func(w http.ResponseWriter, r *http.Request) {
			serveDrift(w, r, o.Drift)
		})
	}
	if o.Live != nil {
		consoleRoutes(mux, o)
		mux.Handle("GET /ui/", console.Handler())
		mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !o.Status.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: no good configuration served yet\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	if o.Hooks != nil {
		mux.Handle("/hooks/", o.Hooks)
	}
	return logRequests(o.Logger, mux)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// logRequests logs at debug level; status pollers would flood info.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		log.Debug("http", "method", r.Method, "path", r.URL.Path, "duration", time.Since(start))
	})
}

// NewServer wraps the handler with timeouts, so a slow client cannot hold
// the status port.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}
