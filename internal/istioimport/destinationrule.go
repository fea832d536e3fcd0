package istioimport

import (
	"regexp"

	"github.com/gitmesh/gitmesh/schema/model"
)

// destinationRule converts a DestinationRule: subsets become versions and
// the traffic policy the service's (or the version's). For an external
// host only TLS origination carries over; for an egress gateway's own
// host nothing does, since gitmesh routes to externals through
// external.via.
func (c *converter) destinationRule(o *object) {
	hn := o.spec.get("host")
	h, err := c.resolveHost(hn.str(), o, hn)
	switch {
	case err != nil:
		o.spec.markAll()
		o.rep.add(hn, Dropped, "%v: the rule is not converted", err)
		return
	case h.egress != "":
		o.rep.drop(o.spec, "a rule for the egress gateway's own service: gitmesh sends external traffic through a gateway by external.via, with no subsets")
		c.converted[o] = true
		return
	case h.external != "":
		c.externalRule(o, h.external)
		return
	}
	s := c.mesh.Services[h.service]
	if tp := o.spec.get("trafficPolicy"); tp.ok() {
		if s.TrafficPolicy != nil {
			o.rep.drop(tp, "service %q already has a traffic policy from another DestinationRule; Istio uses one rule per host", s.Name)
		} else {
			s.TrafficPolicy = c.trafficPolicy(tp, s.Name, o.rep)
		}
	}
	if subs := o.spec.get("subsets"); len(subs.list()) > 0 {
		o.rep.approx(subs, "subsets become versions of %q: a route without a subset reaches every version, but a pod whose labels match no version gets no traffic in gitmesh (Istio sends it some)", s.Name)
	}
	for _, sub := range o.spec.get("subsets").list() {
		nn := sub.get("name")
		name := dnsName(nn.str())
		if name != nn.str() {
			o.rep.approx(nn, "subset %q becomes version %q (versions are DNS labels)", nn.str(), name)
		}
		if s.Versions[name] != nil {
			o.rep.drop(sub, "version %q of %q is already defined", name, s.Name)
			continue
		}
		v := &model.Version{Name: name, Labels: sub.get("labels").strMap()}
		if tp := sub.get("trafficPolicy"); tp.ok() {
			v.TrafficPolicy = c.trafficPolicy(tp, s.Name, o.rep)
		}
		s.Versions[name] = v
	}
	c.origin("services/"+s.Name+".cue", o)
}

// externalRule reads the one thing gitmesh does with a DestinationRule of
// an external host: originating TLS (tls.mode SIMPLE, sni).
func (c *converter) externalRule(o *object, name string) {
	x := c.mesh.External[name]
	tls := o.spec.get("trafficPolicy").get("tls")
	if !tls.ok() {
		for _, pl := range o.spec.get("trafficPolicy").get("portLevelSettings").list() {
			if t := pl.get("tls"); t.ok() {
				tls = t
				pl.get("port").markAll()
				o.rep.approx(pl.get("port"), "TLS origination set for one port applies to the external service's every plain-text port")
				break
			}
		}
	}
	if tls.ok() {
		switch m := tls.get("mode"); m.str() {
		case "SIMPLE":
			x.TLS = &model.ExternalTLS{SNI: tls.get("sni").str()}
		default:
			o.rep.drop(m, "TLS mode %q to an external service has no gitmesh equivalent (gitmesh originates SIMPLE TLS only)", m.str())
		}
	}
	c.origin("external/"+name+".cue", o)
}

// durationRE is gitmesh's #Duration.
var durationRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)

// duration reads a duration field; an unreadable one is dropped.
func duration(n node, rep reporter) model.Duration {
	if !n.ok() {
		return 0
	}
	s := n.str()
	if !durationRE.MatchString(s) {
		rep.drop(n, "duration %q is not a duration gitmesh reads (such as \"1.5s\" or \"250ms\")", s)
		return 0
	}
	d, err := parseDuration(s)
	if err != nil {
		rep.drop(n, "duration %q: %v", s, err)
		return 0
	}
	return d
}

func count(n node) int {
	v, _ := n.int()
	return v
}

// trafficPolicy converts a DestinationRule traffic policy. Envoy's
// circuit breaker and outlier detection fields map one to one; the rest
// is reported by the caller's unread pass.
func (c *converter) trafficPolicy(tp node, svc string, rep reporter) *model.TrafficPolicy {
	out := &model.TrafficPolicy{}
	if lb := tp.get("loadBalancer"); lb.ok() {
		switch s := lb.get("simple"); s.str() {
		case "ROUND_ROBIN", "LEAST_REQUEST", "RANDOM":
			out.LoadBalancer = s.str()
		case "LEAST_CONN":
			out.LoadBalancer = "LEAST_REQUEST"
			rep.approx(s, "LEAST_CONN is Istio's old name of LEAST_REQUEST")
		case "":
		default:
			rep.drop(s, "load balancer %q has no gitmesh equivalent: Envoy's default (ROUND_ROBIN) applies", s.str())
		}
		if ch := lb.get("consistentHash"); ch.ok() {
			if hh := ch.get("httpHeaderName"); hh.ok() {
				out.LoadBalancer, out.HashHeader = "RING_HASH", hh.str()
			} else {
				rep.drop(ch, "gitmesh hashes on a header only (httpHeaderName): the policy falls back to Envoy's default balancing")
			}
		}
	}
	if cp := tp.get("connectionPool"); cp.ok() {
		p := &model.ConnectionPool{}
		tcp, http := cp.get("tcp"), cp.get("http")
		p.MaxConnections = count(tcp.get("maxConnections"))
		p.ConnectTimeout = duration(tcp.get("connectTimeout"), rep)
		p.MaxPendingRequests = count(http.get("http1MaxPendingRequests"))
		p.MaxRequests = count(http.get("http2MaxRequests"))
		p.MaxRequestsPerConnection = count(http.get("maxRequestsPerConnection"))
		p.MaxRetries = count(http.get("maxRetries"))
		p.IdleTimeout = duration(http.get("idleTimeout"), rep)
		if *p != (model.ConnectionPool{}) {
			out.ConnectionPool = p
		}
	}
	if od := tp.get("outlierDetection"); od.ok() {
		o := &model.OutlierDetection{
			Consecutive5xxErrors:     count(od.get("consecutive5xxErrors")),
			ConsecutiveGatewayErrors: count(od.get("consecutiveGatewayErrors")),
			Interval:                 duration(od.get("interval"), rep),
			BaseEjectionTime:         duration(od.get("baseEjectionTime"), rep),
			MaxEjectionPercent:       count(od.get("maxEjectionPercent")),
		}
		if n := od.get("consecutiveErrors"); n.ok() && o.ConsecutiveGatewayErrors == 0 {
			o.ConsecutiveGatewayErrors = count(n)
			rep.approx(n, "consecutiveErrors (deprecated) becomes consecutiveGatewayErrors, its meaning in Istio")
		}
		if *o != (model.OutlierDetection{}) {
			out.OutlierDetection = o
		}
	}
	if t := tp.get("tls"); t.ok() {
		if m := t.get("mode").str(); m == "ISTIO_MUTUAL" {
			t.markAll()
			rep.note(t, "ISTIO_MUTUAL is what gitmesh's mesh mTLS does between sidecars: nothing to convert")
		} else {
			rep.drop(t, "client TLS mode %q: in gitmesh the caller's TLS follows the callee's mtls mode", m)
		}
	}
	if *out == (model.TrafficPolicy{}) {
		return nil
	}
	return out
}
