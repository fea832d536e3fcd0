package render

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sort"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/render/envoystrict"
)

// Layer is a set of resources that many proxy classes receive whole: the
// outbound view of every sidecar with one namespace and one dependency set.
// Without dependsOn every sidecar of a namespace shares one layer of about
// 9,000 resources at 1,000 services, and only a handful of inbound resources
// are its own. Keeping the layer as one object, sorted and deduplicated
// once, is what lets render, the update and the xDS server cost
// O(layer + classes) instead of O(layer × classes).
type Layer struct {
	byType map[string][]*Resource
	// cfg is the layer as the xDS server serves it: the Shared of every
	// class that has the layer, with the layer's Version.
	cfg *snapshot.ClassConfig
	// digest hashes every name and version of the layer; a proxy's
	// Version hashes it instead of the layer's entries.
	digest [sha256.Size]byte
	// strict is the layer as the self-check sees it, converted once
	// however many classes share it.
	strict *envoystrict.Set
}

// Resources returns the layer's resources of one type URL, sorted by name.
func (l *Layer) Resources(typeURL string) []*Resource { return l.byType[typeURL] }

// Types returns the type URLs the layer has resources of, sorted.
func (l *Layer) Types() []string { return sortedTypes(l.byType) }

// Version is a hash over every resource name and version of the layer.
func (l *Layer) Version() string { return hex.EncodeToString(l.digest[:8]) }

// newLayer sorts and deduplicates rs (with their dependencies) into a
// layer; class names the first proxy in conflict findings.
func (b *builder) newLayer(class string, rs []*Resource) *Layer {
	p := b.newProxy(class, "")
	// Size the lists first: a layer is thousands of resources at scale,
	// and growing four lists by doubling was a tenth of its allocations.
	var n [len(p.lists)]int
	countResources(&n, rs)
	for i := range p.lists {
		p.lists[i] = make([]*Resource, 0, n[i])
	}
	p.add(rs...)
	l := &Layer{byType: map[string][]*Resource{}}
	types := snapshot.Rendered()
	for ti, list := range p.lists {
		if out := p.sortDedupe(list); len(out) > 0 {
			l.byType[types[ti]] = out
		}
	}
	h := sha256.New()
	writeEntries(h, l.byType)
	h.Sum(l.digest[:0])
	l.cfg = &snapshot.ClassConfig{Resources: make(map[string][]*snapshot.Resource, len(l.byType)), Version: l.Version()}
	for t, rs := range l.byType {
		l.cfg.Resources[t] = servedList(rs)
	}
	return l
}

// countResources counts what proxyBuilder.add would add, by type index.
func countResources(n *[4]int, rs []*Resource) {
	for _, r := range rs {
		if r == nil {
			continue
		}
		n[r.typeIndex]++
		countResources(n, r.deps)
	}
}

// Config returns the layer as the xDS server serves it.
func (l *Layer) Config() *snapshot.ClassConfig { return l.cfg }

// writeEntries feeds every name and version of byType, in type order, to
// h: the input of the version hashes. It streams through one small buffer:
// building the whole text first cost ~370 MB per render at 10,000 services.
func writeEntries(h hash.Hash, byType map[string][]*Resource) {
	buf := make([]byte, 0, 256)
	for _, t := range snapshot.Rendered() {
		for _, r := range byType[t] {
			buf = append(buf[:0], t...)
			buf = append(buf, 0)
			buf = append(buf, r.Name...)
			buf = append(buf, 0)
			buf = append(buf, r.Version...)
			buf = append(buf, '\n')
			h.Write(buf)
		}
	}
}

// sortedTypes returns the type URLs byType has resources of, sorted.
func sortedTypes(byType map[string][]*Resource) []string {
	types := make([]string, 0, len(byType))
	for t, rs := range byType {
		if len(rs) > 0 {
			types = append(types, t)
		}
	}
	sort.Strings(types)
	return types
}

// without drops from own (sorted) what shared already holds. The same name
// with other content is a model conflict, as it is within one list.
func (p *proxyBuilder) without(own []*Resource, shared []*Resource) []*Resource {
	if len(shared) == 0 {
		return own
	}
	out := own[:0]
	for _, r := range own {
		i := sort.Search(len(shared), func(i int) bool { return shared[i].Name >= r.Name })
		if i < len(shared) && shared[i].Name == r.Name {
			if s := shared[i]; s != r && s.Version != r.Version {
				p.b.errorf(CodeConflict, r.origin, "proxy %q gets two different %s named %q", p.class, snapshot.Noun(r.typeURL), r.Name)
			}
			continue
		}
		out = append(out, r)
	}
	return out
}
