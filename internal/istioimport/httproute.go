package istioimport

import (
	"slices"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// The parts of an HTTPRoute that map field by field: retries, faults,
// mirrors and header edits.

// retries converts an HTTPRetry.
func retries(n node, rep reporter) *model.Retries {
	if !n.ok() {
		return nil
	}
	a, _ := n.get("attempts").int()
	r := &model.Retries{Attempts: a, PerTryTimeout: duration(n.get("perTryTimeout"), rep)}
	if on := n.get("retryOn"); on.ok() {
		s := strings.ReplaceAll(on.str(), " ", "")
		if retryOnRE.MatchString(s) {
			r.RetryOn = s
		} else {
			rep.drop(on, "retryOn %q is not a comma-separated list of Envoy conditions: gitmesh's default applies", on.str())
		}
	}
	return r
}

// grpcCodes are gRPC status names by code, for Istio's abort.grpcStatus
// (a name) to gitmesh's (a number).
var grpcCodes = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// percentage reads Istio's percentage.value, or the deprecated integer
// percent; 100 when neither is set (Istio's default).
func percentage(n node) float64 {
	if v, ok := n.get("percentage").get("value").float(); ok {
		return v
	}
	if v, ok := n.get("percent").float(); ok {
		return v
	}
	return 100
}

// fault converts an HTTPFaultInjection.
func fault(n node, rep reporter) *model.Fault {
	if !n.ok() {
		return nil
	}
	f := &model.Fault{}
	if d := n.get("delay"); d.ok() {
		if fd := duration(d.get("fixedDelay"), rep); fd > 0 {
			f.Delay = &model.FaultDelay{Fixed: fd, Percent: percentage(d)}
		}
	}
	if a := n.get("abort"); a.ok() {
		ab := &model.FaultAbort{Percent: percentage(a)}
		if s, ok := a.get("httpStatus").int(); ok {
			ab.HTTPStatus = s
		} else if g := a.get("grpcStatus"); g.ok() {
			code := slices.Index(grpcCodes, strings.ToUpper(g.str()))
			if code < 0 {
				rep.drop(g, "unknown gRPC status %q", g.str())
				ab = nil
			} else {
				ab.GRPCStatus = code
			}
		} else {
			ab = nil
		}
		f.Abort = ab
	}
	if f.Delay == nil && f.Abort == nil {
		return nil
	}
	return f
}

// mirror converts mirror (with mirrorPercentage or the deprecated
// mirrorPercent) and the first of mirrors.
func (c *converter) mirror(r node, o *object) *model.Mirror {
	m, pct := r.get("mirror"), 100.0
	if v, ok := r.get("mirrorPercentage").get("value").float(); ok {
		pct = v
	} else if v, ok := r.get("mirrorPercent").float(); ok {
		pct = v
	} else if v, ok := r.get("mirror_percent").float(); ok {
		pct = v
	}
	if ms := r.get("mirrors").list(); len(ms) > 0 && !m.ok() {
		m = ms[0].get("destination")
		pct = percentage(ms[0])
		for _, x := range ms[1:] {
			o.rep.drop(x, "gitmesh mirrors to one destination per route")
		}
	}
	if !m.ok() {
		return nil
	}
	h, err := c.resolveHost(m.get("host").str(), o, m)
	if err != nil || h.service == "" {
		o.rep.drop(m, "gitmesh mirrors to mesh services only")
		return nil
	}
	out := &model.Mirror{Service: h.service, Percent: pct}
	if sub := m.get("subset"); sub.ok() {
		out.Version = c.version(h.service, sub.str(), sub, o.rep)
	}
	out.Port, _ = m.get("port").get("number").int()
	return out
}

// headers converts request and response header operations.
func headers(n node) *model.Headers {
	if !n.ok() {
		return nil
	}
	ops := func(x node) *model.HeaderOps {
		if !x.ok() {
			return nil
		}
		return &model.HeaderOps{Set: x.get("set").strMap(), Add: x.get("add").strMap(), Remove: x.get("remove").strs()}
	}
	h := &model.Headers{Request: ops(n.get("request")), Response: ops(n.get("response"))}
	if h.Request == nil && h.Response == nil {
		return nil
	}
	return h
}
