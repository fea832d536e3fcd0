package reconciler

import "github.com/gitmesh/gitmesh/reconciler/xds"

// reuse returns next (render's snapshot) with the previous revision's
// config object for every class whose content version did not change, and
// the previous shared layer for every changed class whose layer's version
// did not. The xDS server would recognise equal versions on its own; the
// reuse is for memory: the server keeps the objects it already serves, so
// without it the persisted state and the secrets overlay would hold a
// second copy of every unchanged resource after each commit. Only the
// loop goroutine calls it.
func reuse(prev, next xds.Update) xds.Update {
	if len(prev.Classes) == 0 {
		return next
	}
	layers := map[string]*xds.ClassConfig{}
	for _, cfg := range prev.Classes {
		if sh := cfg.Shared; sh != nil && sh.Version != "" {
			layers[sh.Version] = sh
		}
	}
	out := xds.Update{Revision: next.Revision, Classes: make(map[string]*xds.ClassConfig, len(next.Classes))}
	rebased := map[*xds.ClassConfig]*xds.ClassConfig{} // a service's versions share one config
	for class, cfg := range next.Classes {
		if old := prev.Classes[class]; old != nil && old.Same(cfg) {
			out.Classes[class] = old
			continue
		}
		if sh := cfg.Shared; sh != nil {
			if old := layers[sh.Version]; old != nil && old != sh {
				c, ok := rebased[cfg]
				if !ok {
					cp := *cfg
					cp.Shared = old
					c = &cp
					rebased[cfg] = c
				}
				cfg = c
			}
		}
		out.Classes[class] = cfg
	}
	return out
}
