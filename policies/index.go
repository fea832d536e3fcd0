package policies

import "github.com/gitmesh/gitmesh/schema/model"

// index holds what checks look up by name, built once so every check stays
// linear in the size of the mesh.
type index struct {
	services  []string
	gateways  []string
	externals []string
	// namespaces of services and gateways: the only identities the mesh's
	// CA issues certificates for.
	namespaces map[string]bool
	// deps is each service's explicit dependsOn as a set ("*" left out).
	deps map[string]map[string]bool
	// callsAll lists, in name order, the services whose dependsOn holds "*".
	callsAll []string
}

func buildIndex(m *model.Mesh) *index {
	ix := &index{
		services:   m.ServiceNames(),
		gateways:   m.GatewayNames(),
		externals:  m.ExternalNames(),
		namespaces: map[string]bool{},
		deps:       make(map[string]map[string]bool, len(m.Services)),
	}
	for _, name := range ix.services {
		s := m.Services[name]
		if s == nil {
			continue
		}
		ix.namespaces[s.Namespace] = true
		set := make(map[string]bool, len(s.DependsOn))
		for _, d := range s.DependsOn {
			if d == "*" {
				if len(ix.callsAll) == 0 || ix.callsAll[len(ix.callsAll)-1] != name {
					ix.callsAll = append(ix.callsAll, name)
				}
				continue
			}
			set[d] = true
		}
		ix.deps[name] = set
	}
	for _, name := range ix.gateways {
		if g := m.Gateways[name]; g != nil {
			ix.namespaces[g.Namespace] = true
		}
	}
	return ix
}
