// Package kube connects gitmesh to a Kubernetes API server for two jobs:
// endpoint discovery for services declared with `discovery: "kubernetes"`,
// and leader election so that of several gitmesh replicas only one writes.
//
// # Discovery
//
// Discovery runs shared informers for Services, EndpointSlices
// (discovery.k8s.io/v1) and Pods in the configured namespaces (all when none
// are given) and turns their caches into render.Input.Endpoints. Endpoints
// are not part of a Git revision: a change of endpoints signals Changed and
// the caller re-renders EDS only.
//
// Mapping rules, for a mesh service S with Discovery == "kubernetes":
//
//   - S maps to the Kubernetes Service named S.Name in namespace S.Namespace.
//     Its endpoints come from the EndpointSlices in that namespace labelled
//     kubernetes.io/service-name=S.Name. The Service object itself is not
//     required: slices alone are enough, and Services() reports Services
//     either way.
//   - An endpoint counts when conditions.ready is nil or true and
//     conditions.terminating is not true. Each of its addresses becomes one
//     model.Endpoint. The same address with the same ports in several
//     slices counts once; the same address with other ports (host-network
//     pods, slices grouped by port) is another endpoint.
//   - Versions: the endpoint's targetRef (a Pod) has labels, read from the
//     Pod informer (which keeps only name, namespace and labels). An endpoint
//     belongs to every version of S whose Labels are all among the pod's
//     labels. A version without labels therefore takes every endpoint, so a
//     service with a single unlabelled version takes them all. An endpoint
//     without a targetRef, or whose Pod is not (yet) in the cache, has no
//     labels. An endpoint that matches no version is dropped and counted in
//     Resolution.Unmatched, which drift reports can show.
//   - Ports: for each port N of S, the slice port named N gives the port the
//     workload listens on. Endpoint.Ports[N] is set only when that differs
//     from the model port's target port (TargetPort, or Number when 0). A
//     slice with a single unnamed port applies to a service with a single
//     port. A model port with no matching slice port keeps its target port.
//   - Output is deterministic: each "S/VERSION" list is sorted by address.
//     Every version of every such service has a key, with an empty list when
//     there are no ready endpoints (or no slices yet), so render serves an
//     empty ClusterLoadAssignment rather than Git's static endpoints.
//
// # Unreachable API server
//
// Informers keep their caches when the API server goes away, so Endpoints
// keeps returning the last known set. Health says so: watch errors recorded
// through the informers' watch error handlers, and a cheap probe of the
// server's /version every Options.ProbeInterval, set Reachable=false with the
// error text and UnreachableSince; the first successful probe sets it back.
// A probe is needed because client-go's reflector retries a refused watch
// connection silently, without calling the watch error handler.
//
// # Leader election
//
// Leader wraps client-go's leaderelection with a coordination.k8s.io/v1
// Lease. It releases the Lease when its context ends, so a successor takes
// over within RetryPeriod instead of LeaseDuration, and campaigns again
// after losing leadership until its context ends.
package kube
