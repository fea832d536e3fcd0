// Package graph computes the console's mesh graph: a pure function from
// the live revision's model and the connected proxies' sync state to
// nodes (services with their versions, gateways, external services) and
// edges (dependsOn, routes with their weights, egress through gateways),
// with each node's health. Measured rates are put on the edges afterwards
// (rates.go). It reads no clock and walks sorted names only, so the same
// input always gives the same graph: the console's layout depends on it.
package graph

import (
	"sort"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Options are what the graph needs besides the model and the proxies.
type Options struct {
	// Revision is the id of the revision m was loaded from.
	Revision string
	// TracesURL is the tracing UI's URL template for a service's traces
	// ({tracingService}, {service} and {namespace} are replaced, see
	// DefaultTracesURL); "" or a mesh without
	// mesh.tracing links nothing.
	TracesURL string
}

// NotLoaded is the graph's note while no model is loaded: before the
// first revision, or after a restart that restored the last good state
// from disk (served, but its model is loaded with the next fetch).
const NotLoaded = "no revision loaded yet: a state restored from disk is loaded with the next successful fetch"

// Build returns the graph of m with the health of proxies. m may be nil
// (nothing loaded yet): the graph is then empty and says why.
func Build(m *model.Mesh, proxies []apiv1.Proxy, o Options) apiv1.Graph {
	g := apiv1.Graph{Revision: o.Revision, Namespaces: []string{}, Nodes: []apiv1.Node{}, Edges: []apiv1.Edge{}}
	if m == nil {
		g.Note = NotLoaded
		return g
	}
	g.Mesh = m.Mesh.Name
	h := newHealth(proxies)
	traces := ""
	if m.Mesh.Tracing != nil {
		traces = o.TracesURL
	}
	nss := map[string]bool{}
	for _, name := range m.ServiceNames() {
		s := m.Services[name]
		nss[s.Namespace] = true
		g.Nodes = append(g.Nodes, serviceNode(s, h, traces))
	}
	for _, name := range m.GatewayNames() {
		gw := m.Gateways[name]
		nss[gw.Namespace] = true
		g.Nodes = append(g.Nodes, gatewayNode(gw, h))
	}
	for _, name := range m.ExternalNames() {
		e := m.External[name]
		g.Nodes = append(g.Nodes, apiv1.Node{ID: ExternalID(name), Kind: apiv1.NodeExternal, Name: name,
			Health: apiv1.HealthUnmanaged, Hosts: append([]string{}, e.Hosts...)})
	}
	for ns := range nss {
		g.Namespaces = append(g.Namespaces, ns)
	}
	sort.Strings(g.Namespaces)
	g.Edges = edges(m)
	return g
}

// ServiceID, GatewayID and ExternalID are the node ids: kind and name, so
// a service and an external service of the same name stay two nodes.
func ServiceID(name string) string  { return string(apiv1.NodeService) + "/" + name }
func GatewayID(name string) string  { return string(apiv1.NodeGateway) + "/" + name }
func ExternalID(name string) string { return string(apiv1.NodeExternal) + "/" + name }

func serviceNode(s *model.Service, h *health, traces string) apiv1.Node {
	n := apiv1.Node{ID: ServiceID(s.Name), Kind: apiv1.NodeService, Name: s.Name, Namespace: s.Namespace,
		Proxy: string(s.Proxy), CallsAll: s.CallsAll()}
	var states []apiv1.Health
	for _, v := range s.VersionNames() {
		nv := apiv1.NodeVersion{Name: v, Health: apiv1.HealthUnmanaged}
		switch s.Proxy {
		case model.ProxySidecar:
			nv.Class = nodeid.Sidecar(s.Namespace, s.Name, v)
		case model.ProxyProxyless:
			nv.Class = nodeid.Proxyless(s.Namespace, s.Name, v)
		}
		if nv.Class != "" {
			nv.Health, nv.Proxies = h.class(nv.Class)
			n.Classes = append(n.Classes, nv.Class)
			n.Nacks = append(n.Nacks, h.nacks[nv.Class]...)
			states = append(states, nv.Health)
		}
		n.Proxies += nv.Proxies
		n.Versions = append(n.Versions, nv)
	}
	n.Health = worst(states)
	if traces != "" && s.Proxy != model.ProxyNone {
		n.TracesURL = expandTraces(traces, s.Name, s.Namespace)
	}
	return n
}

func gatewayNode(gw *model.Gateway, h *health) apiv1.Node {
	class := nodeid.Gateway(string(gw.Kind), gw.Name)
	n := apiv1.Node{ID: GatewayID(gw.Name), Kind: apiv1.NodeGateway, Name: gw.Name, Namespace: gw.Namespace,
		Proxy: string(gw.Kind), Classes: []string{class}, Nacks: h.nacks[class]}
	n.Health, n.Proxies = h.class(class)
	return n
}
