package graph

import (
	"net/url"
	"strings"
)

// DefaultTracesURL is Jaeger's UI on its default port (16686), searching
// the traces of one service: Jaeger's search page reads the service from
// the `service` query parameter (and optionally operation, tags, lookback,
// start, end, minDuration, maxDuration and limit; Kiali links it the same
// way). `{service}.{namespace}` is Istio's convention for a workload's
// tracing service name; a tracer that reports other names needs its own
// template (--tracing-url-template).
const DefaultTracesURL = "http://127.0.0.1:16686/search?service={service}.{namespace}"

// expandTraces fills a tracing URL template for one service; the names
// are query-escaped, since templates put them in query strings.
func expandTraces(tmpl, service, namespace string) string {
	return strings.NewReplacer("{service}", url.QueryEscape(service), "{namespace}", url.QueryEscape(namespace)).Replace(tmpl)
}
