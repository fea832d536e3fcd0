package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// envoyStandIn serves an Envoy-format /stats/prometheus for Prometheus to
// scrape. It is a STAND-IN, not Envoy: no Envoy binary can run here, so the
// series below are written by hand from Envoy's docs (cluster statistics,
// https://www.envoyproxy.io/docs/envoy/latest/configuration/upstream/cluster_manager/cluster_stats:
// upstream_rq_total, upstream_rq_xx by envoy_response_code_class,
// upstream_rq_time; tag names from well_known_names.h) in the shape
// /stats/prometheus prints them, with the gitmesh_* stats tags that
// render/bootstrap adds. Counters grow with time so rates are not zero:
//
//   - productpage v1's sidecar → reviews v2: 20 req/s, 1 of them 5xx
//   - the ingress gateway "edge" → productpage (all versions): 4 req/s
//   - productpage v1's inbound cluster: must not count as an edge
//   - a proxy without gitmesh tags (an old bootstrap): must not count
type envoyStandIn struct{ start time.Time }

func (e envoyStandIn) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s := time.Since(e.start).Seconds()
	pp := `gitmesh_kind="sidecar",gitmesh_namespace="default",gitmesh_service="productpage",gitmesh_version="v1"`
	gw := `gitmesh_kind="ingress",gitmesh_service="edge"`
	reviews := `envoy_cluster_name="outbound|9080|v2|reviews.default.svc.cluster.local"`
	ppAll := `envoy_cluster_name="outbound|9080||productpage.default.svc.cluster.local"`
	inbound := `envoy_cluster_name="inbound|9080||"`
	var b strings.Builder
	counter := func(name, labels string, v float64) {
		// Floats, not whole requests: whole numbers would make a 1/s rate
		// jump by a request per scrape and blur the rate the test expects.
		fmt.Fprintf(&b, "%s{%s} %.3f\n", name, labels, v)
	}
	b.WriteString("# TYPE envoy_cluster_upstream_rq_total counter\n")
	counter("envoy_cluster_upstream_rq_total", reviews+","+pp, 20*s)
	counter("envoy_cluster_upstream_rq_total", ppAll+","+gw, 4*s)
	counter("envoy_cluster_upstream_rq_total", inbound+","+pp, 24*s)
	counter("envoy_cluster_upstream_rq_total", `envoy_cluster_name="outbound|9080|v1|ratings.default.svc.cluster.local"`, 7*s)
	b.WriteString("# TYPE envoy_cluster_upstream_rq_xx counter\n")
	counter("envoy_cluster_upstream_rq_xx", reviews+`,envoy_response_code_class="2",`+pp, 19*s)
	counter("envoy_cluster_upstream_rq_xx", reviews+`,envoy_response_code_class="5",`+pp, 1*s)
	counter("envoy_cluster_upstream_rq_xx", ppAll+`,envoy_response_code_class="2",`+gw, 4*s)
	b.WriteString("# TYPE envoy_cluster_upstream_rq_time histogram\n")
	for _, h := range []struct {
		labels string
		n      float64
	}{{reviews + "," + pp, 20}, {ppAll + "," + gw, 4}} {
		n := h.n
		for _, le := range []struct {
			le   string
			frac float64
		}{{"5", 0.5}, {"25", 0.9}, {"100", 1}, {"+Inf", 1}} {
			counter("envoy_cluster_upstream_rq_time_bucket", h.labels+`,le="`+le.le+`"`, le.frac*n*s)
		}
		counter("envoy_cluster_upstream_rq_time_sum", h.labels, 8*n*s)
		counter("envoy_cluster_upstream_rq_time_count", h.labels, n*s)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write([]byte(b.String()))
}
