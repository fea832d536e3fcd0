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
// class's rendered content version and the shared configs by layer version.
type served struct {
	update   xds.Update
	versions map[string]string
	layers   map[string]*xds.ClassConfig
}

// toUpdate converts like ToUpdate, and keeps the previous revision's config
// object for every class whose rendered content did not change. The xDS
// server skips such a class in O(1) and the secrets overlay keeps its own,
// so a one-service commit costs only the classes that see the service
// instead of all of them. Only the loop goroutine calls it.
func (r *Reconciler) toUpdate(revision string, b *render.Bundle) xds.Update {
	u, s := toUpdate(revision, b, r.served)
	r.served = s
	return u
}

// toUpdate converts every class once per distinct content: a render layer
// (the outbound view many sidecars share) becomes one shared ClassConfig,
// converted once and kept across revisions while its version holds, and
// the classes of a service's versions share their own lists.
func toUpdate(revision string, b *render.Bundle, prev *served) (xds.Update, *served) {
	u := xds.Update{Revision: revision, Classes: make(map[string]*xds.ClassConfig, len(b.Classes()))}
	next := &served{update: u, versions: make(map[string]string, len(b.Classes())), layers: map[string]*xds.ClassConfig{}}
	memo := map[*render.Resource]*xds.Resource{}
	convert := func(rs []*render.Resource) []*xds.Resource {
		list := make([]*xds.Resource, len(rs))
		for i, rr := range rs {
			x, ok := memo[rr]
			if !ok {
				x = &xds.Resource{Name: rr.Name, Version: rr.Version, Any: rr.Any()}
				memo[rr] = x
			}
			list[i] = x
		}
		return list
	}
	type listKey struct {
		first **render.Resource
		n     int
	}
	lists := map[listKey][]*xds.Resource{} // own lists, by identity: aliases share theirs
	layers := map[*render.Layer]*xds.ClassConfig{}
	for _, class := range b.Classes() {
		p := b.Proxy(class)
		v := p.Version()
		next.versions[class] = v
		if prev != nil && prev.versions[class] == v {
			if cfg := prev.update.Classes[class]; cfg != nil {
				u.Classes[class] = cfg
				if cfg.Shared != nil && p.Shared() != nil {
					next.layers[p.Shared().Version()] = cfg.Shared
				}
				continue
			}
		}
		cfg := &xds.ClassConfig{Resources: map[string][]*xds.Resource{}}
		if l := p.Shared(); l != nil {
			sh, ok := layers[l]
			if !ok {
				if prev != nil {
					sh = prev.layers[l.Version()]
				}
				if sh == nil {
					sh = &xds.ClassConfig{Resources: map[string][]*xds.Resource{}}
					for _, typeURL := range l.Types() {
						sh.Resources[typeURL] = convert(l.Resources(typeURL))
					}
				}
				layers[l] = sh
			}
			next.layers[l.Version()] = sh
			cfg.Shared = sh
		}
		for _, typeURL := range p.Types() {
			rs := p.Own(typeURL)
			if len(rs) == 0 {
				continue
			}
			k := listKey{&rs[0], len(rs)}
			list, ok := lists[k]
			if !ok {
				list = convert(rs)
				lists[k] = list
			}
			cfg.Resources[typeURL] = list
		}
		u.Classes[class] = cfg
	}
	next.update = u
	return u, next
}
