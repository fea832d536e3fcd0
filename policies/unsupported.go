package policies

import (
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkUnsupported reports, before render does (GM0809), values no proxy
// can be given (GM0208). The CUE schema rejects both already at the value;
// this check keeps the verdict the same for a model built in Go, so that
// validate never passes what render refuses:
//   - a Wasm url that is not http(s): Envoy fetches modules through a
//     remote data source (an HTTP URI and a sha256); it cannot pull OCI
//     images (oci://), and gitmesh runs no puller for it;
//   - a tracing provider other than zipkin and opentelemetry.
//
// The third GM0809 path, a proxyless caller routed to an external service,
// depends on who calls whom and is reported by checkProxyless.
func checkUnsupported(c *checker) {
	for _, name := range c.m.ExtensionNames() {
		x := c.m.Extensions[name]
		if x == nil {
			continue
		}
		if u := x.Wasm.URL; !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			c.report(CodeUnsupported, model.Path("extensions", name, "wasm", "url"),
				"wasm url %q: only http:// and https:// urls (with sha256) are supported; Envoy cannot pull oci:// images", u)
		}
	}
	if t := c.m.Mesh.Tracing; t != nil && t.Provider != "zipkin" && t.Provider != "opentelemetry" {
		c.report(CodeUnsupported, "mesh.tracing.provider", "unknown tracing provider %q (want %q or %q)", t.Provider, "zipkin", "opentelemetry")
	}
}
