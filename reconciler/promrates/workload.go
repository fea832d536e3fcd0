package promrates

import (
	"strings"

	"github.com/prometheus/common/model"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/render/bootstrap"
)

// edge turns one series of a query into its source and destination; ok is
// false for a series that does not name both (a proxy from a bootstrap
// older than the stats tags, a cluster that is not outbound).
func edge(f family, m model.Metric) (src, dst apiv1.Workload, ok bool) {
	switch f {
	case familyEnvoy:
		src = apiv1.Workload{
			Namespace: string(m[bootstrap.StatsTagNamespace]),
			Service:   string(m[bootstrap.StatsTagService]),
			Version:   string(m[bootstrap.StatsTagVersion]),
		}
		dst, ok = outboundCluster(string(m[labelEnvoyCluster]))
	case familyGRPC:
		src = apiv1.Workload{
			Namespace: string(m[labelOTelNamespace]),
			Service:   string(m[labelOTelService]),
			Version:   string(m[labelOTelVersion]),
		}
		dst, ok = outboundCluster(string(m[labelGRPCBackend]))
		if !ok {
			dst, ok = grpcTarget(string(m[labelGRPCTarget]), src.Namespace)
		}
	}
	return src, dst, ok && src.Service != ""
}

// outboundCluster reads render's cluster name outbound|PORT|VERSION|HOST
// (render/NAMES.md): HOST is NAME.NS.svc.DOMAIN for a mesh service, or an
// external host; VERSION is empty for a cluster of all versions.
func outboundCluster(name string) (apiv1.Workload, bool) {
	_, version, h, ok := render.ParseOutboundCluster(name)
	if !ok || h == "" {
		return apiv1.Workload{}, false
	}
	w := host(h, "")
	w.Version = version
	return w, true
}

// grpcTarget reads a client's dial target, xds:///NAME:PORT or
// xds:///NAME.NS.svc.DOMAIN:PORT; a short name is in the caller's
// namespace, as the listener render gives it (render/NAMES.md).
func grpcTarget(target, callerNS string) (apiv1.Workload, bool) {
	rest, found := strings.CutPrefix(target, "xds:///")
	if !found || rest == "" {
		return apiv1.Workload{}, false
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return host(rest, callerNS), rest != ""
}

// host names the service behind a host name: NAME.NS.svc.DOMAIN is NAME in
// NS; a name without dots is a service in defaultNS; anything else is an
// external host, named as is.
func host(h, defaultNS string) apiv1.Workload {
	if before, _, found := strings.Cut(h, ".svc."); found {
		if name, ns, ok := strings.Cut(before, "."); ok && !strings.Contains(ns, ".") {
			return apiv1.Workload{Namespace: ns, Service: name}
		}
	}
	if defaultNS != "" && !strings.Contains(h, ".") {
		return apiv1.Workload{Namespace: defaultNS, Service: h}
	}
	return apiv1.Workload{Service: h}
}
