package graph

import (
	"fmt"
	"sort"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/schema/model"
)

// edgeSet collects edges, one per (from, to): a service that both lists
// another in dependsOn and routes to it is one arrow with one label.
type edgeSet struct {
	byID map[string]*apiv1.Edge
}

// edgeID is an edge's id: one edge per (from, to).
func edgeID(from, to string) string { return from + "->" + to }

func (es *edgeSet) add(from, to string, kind apiv1.EdgeKind, ws []apiv1.EdgeWeight) {
	id := edgeID(from, to)
	e, ok := es.byID[id]
	if !ok {
		e = &apiv1.Edge{ID: id, From: from, To: to, Kind: kind}
		es.byID[id] = e
	}
	for _, w := range ws {
		if !hasWeight(e.Weights, w) {
			e.Weights = append(e.Weights, w)
		}
	}
}

func hasWeight(ws []apiv1.EdgeWeight, w apiv1.EdgeWeight) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// edges derives the traffic the mesh allows. A caller's edge to a service
// carries the service's own split (its routes' destinations among its
// versions), because that is what the caller's proxy applies; a route to
// another service or an external one is an edge of its own. Traffic to an
// external service with `via` goes service → egress gateway → external.
func edges(m *model.Mesh) []apiv1.Edge {
	es := &edgeSet{byID: map[string]*apiv1.Edge{}}
	for _, name := range m.ServiceNames() {
		s := m.Services[name]
		if !s.CallsAll() {
			for _, d := range sortedCopy(s.DependsOn) {
				if t, ok := m.Services[d]; ok {
					es.add(ServiceID(name), ServiceID(d), apiv1.EdgeDependsOn, split(t))
				} else if e, ok := m.External[d]; ok {
					externalEdge(es, m, ServiceID(name), d, e)
				}
			}
		}
		for i, r := range s.Routes {
			for _, d := range r.To {
				switch {
				case d.External != "":
					if e, ok := m.External[d.External]; ok {
						externalEdge(es, m, ServiceID(name), d.External, e)
					}
				case d.Service != "" && d.Service != name:
					if _, ok := m.Services[d.Service]; ok {
						es.add(ServiceID(name), ServiceID(d.Service), apiv1.EdgeRoute, []apiv1.EdgeWeight{weight(r, i, d)})
					}
				}
			}
		}
	}
	for _, name := range m.GatewayNames() {
		gw := m.Gateways[name]
		for i, r := range gw.Routes {
			for _, d := range r.To {
				switch {
				case d.Service != "":
					if _, ok := m.Services[d.Service]; ok {
						es.add(GatewayID(name), ServiceID(d.Service), apiv1.EdgeRoute, []apiv1.EdgeWeight{weight(r, i, d)})
					}
				case d.External != "":
					if _, ok := m.External[d.External]; ok {
						es.add(GatewayID(name), ExternalID(d.External), apiv1.EdgeRoute, []apiv1.EdgeWeight{weight(r, i, d)})
					}
				}
			}
		}
	}
	out := make([]apiv1.Edge, 0, len(es.byID))
	for _, e := range es.byID {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// externalEdge is a service's traffic to an external service: through its
// egress gateway when it names one that exists, else direct.
func externalEdge(es *edgeSet, m *model.Mesh, from, name string, e *model.External) {
	if _, ok := m.Gateways[e.Via]; ok && e.Via != "" {
		es.add(from, GatewayID(e.Via), apiv1.EdgeEgress, nil)
		es.add(GatewayID(e.Via), ExternalID(name), apiv1.EdgeEgress, nil)
		return
	}
	es.add(from, ExternalID(name), apiv1.EdgeDependsOn, nil)
}

// split is a service's routes' destinations among its own versions, in
// route order: what a caller's proxy does with a request to it. A service
// without routes spreads traffic over all versions: no weights.
func split(s *model.Service) []apiv1.EdgeWeight {
	var ws []apiv1.EdgeWeight
	for i, r := range s.Routes {
		for _, d := range r.To {
			if d.External == "" && (d.Service == "" || d.Service == s.Name) {
				ws = append(ws, weight(r, i, d))
			}
		}
	}
	return ws
}

// weight is destination d's share of route r (the i-th), in percent of
// the route's total weight; equal shares when no weights are given.
func weight(r model.Route, i int, d model.Destination) apiv1.EdgeWeight {
	name := r.Name
	if name == "" {
		name = fmt.Sprintf("#%d", i)
	}
	total := 0
	for _, x := range r.To {
		total += x.Weight
	}
	pct := 100 / max(len(r.To), 1)
	if total > 0 {
		pct = (d.Weight*100 + total/2) / total
	}
	return apiv1.EdgeWeight{Route: name, Version: d.Version, Weight: pct}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
