package xds

import (
	"slices"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// view is what one class serves of one type: the shared part its
// ClassConfig.Shared names (one typeIndex for every class pointing at the
// same list) and the class's own part. Neither is copied per class, so
// 1,000 unscoped sidecars cost one 9,000-entry index plus 1,000 small ones.
type view struct {
	base, own *typeIndex
	// version is the class's type version: the hash sum of both parts, so
	// it equals what a single merged index would have.
	version string
}

// emptyView stands for a type a class has no resources of.
var emptyView = &view{base: emptyIndex, own: emptyIndex, version: emptyIndex.version}

func newView(base, own *typeIndex) *view {
	return &view{base: base, own: own, version: versionOf(base.sum + own.sum)}
}

func (v *view) len() int { return len(v.base.list) + len(v.own.list) }

// find returns the resource named name and its delta wrapper.
func (v *view) find(name string) (*Resource, *discovery.Resource, bool) {
	if i, ok := v.own.find(name); ok {
		return v.own.list[i], v.own.deltas[i], true
	}
	if i, ok := v.base.find(name); ok {
		return v.base.list[i], v.base.deltas[i], true
	}
	return nil, nil, false
}

// each calls fn for every resource, the shared part first.
func (v *view) each(fn func(r *Resource, a *anypb.Any)) {
	for i, r := range v.base.list {
		fn(r, v.base.anys[i])
	}
	for i, r := range v.own.list {
		fn(r, v.own.anys[i])
	}
}

// anys is every Any of the view, the shared part first: sharedCodec
// recognises the shared part's run and sends its one encoding. Only a view
// with both parts allocates.
func (v *view) anys() []*anypb.Any {
	return concat(v.base.anys, v.own.anys)
}

// concat returns a followed by b, without copying when either is empty.
func concat[T any](a, b []T) []T {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	return append(a[:len(a):len(a)], b...)
}

// combine is a class's diff from its parts' diffs. A name removed from one
// part may have moved to the other: it is not removed from the class.
func combine(v *view, base, own typeDiff) typeDiff {
	if len(base.removed) == 0 && len(own.removed) == 0 {
		switch {
		case len(own.changed) == 0:
			return base
		case len(base.changed) == 0:
			return own
		}
	}
	d := typeDiff{changed: concat(base.changed, own.changed)}
	for _, names := range [][]string{base.removed, own.removed} {
		for _, n := range names {
			if _, _, ok := v.find(n); !ok {
				d.removed = append(d.removed, n)
			}
		}
	}
	slices.Sort(d.removed)
	return d
}

// versionIn returns the version of name in idx (nil idx holds nothing).
func versionIn(idx *typeIndex, name string) (string, bool) {
	if idx == nil {
		return "", false
	}
	if i, ok := idx.find(name); ok {
		return idx.list[i].Version, true
	}
	return "", false
}

// minIntern is the subscription size from which a request's names are
// interned: Envoy subscribes to every EDS and RDS name of its class, and
// go-control-plane keeps each stream's names as map keys, so without it
// 1,000 unscoped streams hold 6 million private copies (~270 MB) after
// decoding twice that in garbage.
const minIntern = 16

// internTable returns the current intern table of served resource names,
// building it on first use after an Apply. sharedCodec decodes large
// subscriptions' names into its strings.
func (s *Server) internTable() map[string]string {
	c := s.names.Load()
	if c == nil {
		return nil
	}
	c.once.Do(func() { c.table = s.nameTable() })
	return c.table
}

// nameCache is the intern table of one Apply, built on the first large
// request after it: an Apply that only ACKs follow (a one-service change)
// never pays for it.
type nameCache struct {
	once  sync.Once
	table map[string]string
}

// nameTable lists every resource name the served classes hold, once per
// distinct part.
func (s *Server) nameTable() map[string]string {
	s.mu.RLock()
	classes := s.classes
	s.mu.RUnlock()
	seen := map[*typeIndex]bool{}
	out := map[string]string{}
	add := func(t *typeIndex) {
		if seen[t] {
			return
		}
		seen[t] = true
		for _, r := range t.list {
			out[r.Name] = r.Name
		}
	}
	for _, cs := range classes {
		cs.mu.Lock()
		for _, v := range cs.types {
			add(v.base)
			add(v.own)
		}
		cs.mu.Unlock()
	}
	return out
}
