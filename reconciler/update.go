package reconciler

import (
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/render"
)

// ToUpdate turns a rendered bundle into what the xDS server serves, keeping
// render's sharing: a resource shared by many classes stays one object with
// one marshalled Any.
func ToUpdate(revision string, b *render.Bundle) xds.Update {
	u, _ := toUpdate(revision, b, nil)
	return u
}

// served is what the previous revision handed to the xDS server, with each
// class's rendered content version.
type served struct {
	update   xds.Update
	versions map[string]string
}

// toUpdate converts like ToUpdate, and keeps the previous revision's config
// object for every class whose rendered content did not change. The xDS
// server skips such a class in O(1) and the secrets overlay keeps its own,
// so a one-service commit costs only the classes that see the service
// instead of all of them. Only the loop goroutine calls it.
func (r *Reconciler) toUpdate(revision string, b *render.Bundle) xds.Update {
	u, versions := toUpdate(revision, b, r.served)
	r.served = &served{update: u, versions: versions}
	return u
}

func toUpdate(revision string, b *render.Bundle, prev *served) (xds.Update, map[string]string) {
	u := xds.Update{Revision: revision, Classes: make(map[string]*xds.ClassConfig, len(b.Classes()))}
	versions := make(map[string]string, len(b.Classes()))
	memo := map[*render.Resource]*xds.Resource{}
	for _, class := range b.Classes() {
		p := b.Proxy(class)
		v := p.Version()
		versions[class] = v
		if prev != nil && prev.versions[class] == v {
			if cfg := prev.update.Classes[class]; cfg != nil {
				u.Classes[class] = cfg
				continue
			}
		}
		cfg := &xds.ClassConfig{Resources: map[string][]*xds.Resource{}}
		for _, typeURL := range p.Types() {
			rs := p.Resources(typeURL)
			list := make([]*xds.Resource, len(rs))
			for i, rr := range rs {
				x, ok := memo[rr]
				if !ok {
					x = &xds.Resource{Name: rr.Name, Version: rr.Version, Any: rr.Any()}
					memo[rr] = x
				}
				list[i] = x
			}
			cfg.Resources[typeURL] = list
		}
		u.Classes[class] = cfg
	}
	return u, versions
}
