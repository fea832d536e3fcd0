package policies

// checkWeights reports routes whose destination weights do not add up to 100
// (GM0201), for services and gateways alike. Envoy's weighted clusters take
// any total, so a typo such as 90/20 would quietly become 82/18; and a total
// of 0 is rejected by grpc-go and Envoy alike (NACK), which would stall the
// whole revision at the proxies instead of at review time.
func checkWeights(c *checker) {
	for _, rs := range c.routeSets() {
		for i, r := range rs.routes {
			path := rs.routePath(i) + ".to"
			if len(r.To) == 0 {
				c.report(CodeWeights, path, "route %q has no destinations", routeName(r, i))
				continue
			}
			sum := 0
			for _, d := range r.To {
				sum += d.Weight
			}
			if sum != 100 {
				c.report(CodeWeights, path, "weights sum to %d, want 100", sum)
			}
		}
	}
}
