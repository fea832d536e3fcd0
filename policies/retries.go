package policies

import (
	"time"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkRetries warns about retry policies that cannot retry (GM0204): when
// each try may take as long as the whole request, the route timeout fires
// during the first try and the configured attempts never happen.
func checkRetries(c *checker) {
	for _, rs := range c.routeSets() {
		for i, r := range rs.routes {
			if r.Retries == nil || r.Timeout <= 0 || r.Retries.PerTryTimeout <= 0 || r.Retries.Attempts == 0 {
				continue
			}
			if r.Retries.PerTryTimeout >= r.Timeout {
				c.report(CodeRetryTimeout, rs.routePath(i)+".retries.perTryTimeout",
					"perTryTimeout %q is not shorter than the route timeout %q, so no retry can happen",
					durationString(r.Retries.PerTryTimeout), durationString(r.Timeout))
			}
		}
	}
}

// durationString prints a model duration the way users write them in CUE.
func durationString(d model.Duration) string { return time.Duration(d).String() }
