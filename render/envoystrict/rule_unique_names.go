package envoystrict

import "github.com/gitmesh/gitmesh/internal/snapshot"

// Rule: a name is used once per type in a class: one cluster, one
// listener, one route configuration, one assignment per name.
//
// In state-of-the-world xDS a response carries each resource once and
// Envoy keys everything by name: CdsApiHelper::onConfigUpdate (source/common/upstream/
// cds_api_helper.cc) refuses "duplicate cluster {} found", and
// LdsApiImpl::onConfigUpdate (source/common/listener_manager/lds_api.cc)
// "duplicate listener {} found". Two different resources under one name
// in one class would also make the served version ambiguous. Render
// merges a class's resources by name and reports a clash while building
// (same code); this rule checks what it hands over, including the split
// between a class's shared layer and its own resources.

// duplicateNames reports repeated names within s and, when shared is set,
// names of s that shared has too.
func (c *Checker) duplicateNames(cl Class, s, shared *Set) {
	for _, t := range types {
		rs := s.Resources(t)
		for i, r := range rs {
			if i > 0 && rs[i-1].Name == r.Name && c.once(r, "name") {
				c.errorf(CodeConflict, r, "", "proxy %q gets two %ss named %q", cl.Name, snapshot.Noun(t), r.Name)
			}
			if shared != nil && shared.has(t, r.Name) && c.once(r, "name") {
				c.errorf(CodeConflict, r, "", "proxy %q gets %s %q both in its shared layer and on its own", cl.Name, snapshot.Noun(t), r.Name)
			}
		}
	}
}

// checkUniqueNames checks the class's own resources (the shared set was
// checked when first seen).
func (c *Checker) checkUniqueNames(cl Class) {
	c.duplicateNames(cl, cl.Own, cl.Shared)
}
