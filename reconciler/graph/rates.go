package graph

import (
	"sort"
	"time"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// AddRates puts measured traffic on g's edges: each rate is matched to
// the edge between its source and destination workloads (a service, a
// gateway or an external service by name, and by namespace when the
// metric says one), summed per edge and split by destination version.
// Traffic between nodes the graph has no edge for is not drawn: the
// graph shows what Git allows, with the rates of what flows on it. An
// edge without measured traffic keeps no rate. A failed query is
// reported in g.Rates, never failing the graph.
func AddRates(g *apiv1.Graph, rates []apiv1.EdgeRate, err error) {
	g.Rates = &apiv1.GraphRates{}
	if err != nil {
		g.Rates.Error = err.Error()
		return
	}
	nodes := make(map[string]*apiv1.Node, len(g.Nodes))
	for i := range g.Nodes {
		nodes[g.Nodes[i].ID] = &g.Nodes[i]
	}
	edges := make(map[string]*apiv1.Edge, len(g.Edges))
	for i := range g.Edges {
		edges[g.Edges[i].ID] = &g.Edges[i]
	}
	var window time.Duration
	for _, r := range rates {
		from, to := find(nodes, r.Source), find(nodes, r.Destination)
		e := edges[edgeID(from, to)]
		if from == "" || to == "" || e == nil {
			continue
		}
		window = max(window, r.Window)
		e.RequestsPerSecond = add(e.RequestsPerSecond, r.RequestsPerSecond)
		e.ErrorsPerSecond = add(e.ErrorsPerSecond, r.ErrorsPerSecond)
		e.Measured = addVersion(e.Measured, r)
	}
	g.Rates.WindowSeconds = window.Seconds()
}

// find returns the id of the node w names: a service first (what Envoy's
// and grpc-go's metrics mostly name), then a gateway, then an external
// service; "" when none, or when the namespace disagrees.
func find(nodes map[string]*apiv1.Node, w apiv1.Workload) string {
	for _, id := range []string{ServiceID(w.Service), GatewayID(w.Service), ExternalID(w.Service)} {
		if n, ok := nodes[id]; ok && (w.Namespace == "" || n.Namespace == "" || n.Namespace == w.Namespace) {
			return id
		}
	}
	return ""
}

func add(p *float64, v float64) *float64 {
	if p != nil {
		v += *p
	}
	return &v
}

func addVersion(vs []apiv1.VersionRate, r apiv1.EdgeRate) []apiv1.VersionRate {
	for i := range vs {
		if vs[i].Version == r.Destination.Version {
			vs[i].RequestsPerSecond += r.RequestsPerSecond
			vs[i].ErrorsPerSecond += r.ErrorsPerSecond
			return vs
		}
	}
	vs = append(vs, apiv1.VersionRate{Version: r.Destination.Version, RequestsPerSecond: r.RequestsPerSecond, ErrorsPerSecond: r.ErrorsPerSecond})
	sort.Slice(vs, func(i, j int) bool { return vs[i].Version < vs[j].Version })
	return vs
}
