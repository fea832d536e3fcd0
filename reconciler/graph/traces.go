package graph

import (
	"net/url"
	"strings"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/render/bootstrap"
)

// DefaultTracesURL is Jaeger's UI on its default port (16686), searching
// the traces of one service: Jaeger's search page reads the service from
// the `service` query parameter (and optionally operation, tags, lookback,
// start, end, minDuration, maxDuration and limit; Kiali links it the same
// way). {tracingService} is the name gitmesh's proxies report their spans
// under (bootstrap.TracingService: "reviews.default"); a tracer that
// reports other names needs its own template (--tracing-url-template),
// which may use {service} and {namespace}.
const DefaultTracesURL = "http://127.0.0.1:16686/search?service={tracingService}"

// expandTraces fills a tracing URL template for one service; the names
// are query-escaped, since templates put them in query strings.
func expandTraces(tmpl, service, namespace string) string {
	// Every version of the service reports the same name, so any
	// version's class gives it.
	ts := bootstrap.TracingService(nodeid.Class{Kind: nodeid.KindSidecar, Namespace: namespace, Service: service})
	return strings.NewReplacer("{tracingService}", url.QueryEscape(ts),
		"{service}", url.QueryEscape(service), "{namespace}", url.QueryEscape(namespace)).Replace(tmpl)
}
