package kube

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Resolution is the result of mapping the Kubernetes view onto a mesh.
type Resolution struct {
	// Endpoints is render.Input.Endpoints: "SERVICE/VERSION" → endpoints,
	// with a key for every version of every service discovered from
	// Kubernetes.
	Endpoints map[string][]model.Endpoint
	// Unmatched counts, by mesh service, ready addresses whose Pod labels
	// match none of the service's versions (so they receive no traffic).
	Unmatched map[string]int
	// Missing lists, sorted, the mesh services with discovery "kubernetes"
	// that have no Kubernetes Service, or whose namespace is not watched.
	Missing []string
	// Addresses is render.Input.Addresses: the ClusterIPs (spec.clusterIPs,
	// dual-stack in the Service's order) of each mesh service with
	// discovery "kubernetes" whose CUE declares no addresses; they become
	// its VIPs (model.Mesh.VIPs). Headless Services ("None") have none. Nil
	// when no service has any.
	Addresses map[string][]string
}

// view is what resolve reads: the informer caches in production, plain
// values in the table tests of the mapping rules.
type view interface {
	// watched reports whether namespace ns is watched at all.
	watched(ns string) bool
	// service returns the Kubernetes Service ns/name, or nil.
	service(ns, name string) *corev1.Service
	// slicesOf returns the EndpointSlices labelled for Service ns/name.
	slicesOf(ns, name string) []*discoveryv1.EndpointSlice
	// podLabels returns the labels of Pod ns/name (nil if unknown).
	podLabels(ns, name string) map[string]string
}

// resolve applies the mapping rules of the package doc.
func resolve(m *model.Mesh, v view) Resolution {
	r := Resolution{Endpoints: map[string][]model.Endpoint{}, Unmatched: map[string]int{}}
	if m == nil {
		return r
	}
	for _, name := range m.ServiceNames() {
		s := m.Services[name]
		if s.Discovery != "kubernetes" {
			continue
		}
		versions := s.VersionNames()
		for _, ver := range versions {
			r.Endpoints[name+"/"+ver] = []model.Endpoint{}
		}
		if !v.watched(s.Namespace) || v.service(s.Namespace, name) == nil {
			r.Missing = append(r.Missing, name)
			if !v.watched(s.Namespace) {
				continue
			}
		}
		if ips := clusterIPs(v.service(s.Namespace, name)); len(ips) > 0 && len(s.Addresses) == 0 {
			if r.Addresses == nil {
				r.Addresses = map[string][]string{}
			}
			r.Addresses[name] = ips
		}
		seen := map[string]bool{}
		for _, sl := range sortedSlices(v.slicesOf(s.Namespace, name)) {
			ports := portOverrides(s, sl)
			for _, ep := range sl.Endpoints {
				if !ready(ep) {
					continue
				}
				labels := targetLabels(v, sl.Namespace, ep.TargetRef)
				var in []string
				for _, ver := range versions {
					if hasLabels(labels, s.Versions[ver].Labels) {
						in = append(in, ver)
					}
				}
				for _, addr := range ep.Addresses {
					// One address with other ports in another slice is
					// another workload (host-network pods): only the same
					// address and ports count once.
					key := addr + "|" + portKey(ports)
					if seen[key] {
						continue
					}
					seen[key] = true
					if len(in) == 0 {
						r.Unmatched[name]++
						continue
					}
					for _, ver := range in {
						e := model.Endpoint{Address: addr}
						if len(ports) > 0 {
							e.Ports = maps.Clone(ports)
						}
						r.Endpoints[name+"/"+ver] = append(r.Endpoints[name+"/"+ver], e)
					}
				}
			}
		}
		for _, ver := range versions {
			slices.SortFunc(r.Endpoints[name+"/"+ver], func(a, b model.Endpoint) int {
				return cmp.Or(strings.Compare(a.Address, b.Address), strings.Compare(portKey(a.Ports), portKey(b.Ports)))
			})
		}
	}
	return r
}

// clusterIPs are a Service's virtual IPs: spec.clusterIPs (which repeats
// spec.clusterIP first), else spec.clusterIP; none for a headless Service.
func clusterIPs(svc *corev1.Service) []string {
	if svc == nil {
		return nil
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []string
	for _, ip := range ips {
		if ip != "" && ip != corev1.ClusterIPNone {
			out = append(out, ip)
		}
	}
	return out
}

// portKey is a stable text form of a port override map.
func portKey(ports map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(ports)) {
		fmt.Fprintf(&b, "%s=%d,", k, ports[k])
	}
	return b.String()
}

// ready reports whether an endpoint may receive traffic: ready unknown
// (nil) counts as ready, as the EndpointSlice API asks consumers to do;
// terminating endpoints never count.
func ready(ep discoveryv1.Endpoint) bool {
	c := ep.Conditions
	return (c.Ready == nil || *c.Ready) && (c.Terminating == nil || !*c.Terminating)
}

// targetLabels returns the labels of the Pod an endpoint points at.
func targetLabels(v view, sliceNS string, ref *corev1.ObjectReference) map[string]string {
	if ref == nil || ref.Kind != "Pod" || ref.Name == "" {
		return nil
	}
	ns := ref.Namespace
	if ns == "" {
		ns = sliceNS
	}
	return v.podLabels(ns, ref.Name)
}

// hasLabels reports whether have contains every label of want.
func hasLabels(have, want map[string]string) bool {
	for k, w := range want {
		if h, ok := have[k]; !ok || h != w {
			return false
		}
	}
	return true
}

// portOverrides returns, by model port name, the workload ports of one
// slice that differ from the model's target ports.
func portOverrides(s *model.Service, sl *discoveryv1.EndpointSlice) map[string]int {
	var out map[string]int
	for _, p := range s.Ports {
		port, ok := slicePort(sl, p.Name, len(s.Ports) == 1)
		if !ok {
			continue
		}
		if port != p.Target() {
			if out == nil {
				out = map[string]int{}
			}
			out[p.Name] = port
		}
	}
	return out
}

// slicePort finds the slice port named name; a lone unnamed slice port
// serves a single-port service.
func slicePort(sl *discoveryv1.EndpointSlice, name string, singlePort bool) (int, bool) {
	for _, sp := range sl.Ports {
		if sp.Port != nil && sp.Name != nil && *sp.Name == name && name != "" {
			return int(*sp.Port), true
		}
	}
	if singlePort && len(sl.Ports) == 1 {
		sp := sl.Ports[0]
		if sp.Port != nil && (sp.Name == nil || *sp.Name == "") {
			return int(*sp.Port), true
		}
	}
	return 0, false
}

// sortedSlices orders slices by name, so that which slice wins for an
// address found in two is the same on every replica and every run.
func sortedSlices(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}
