package xds

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/snapshot"
)

// typeIndex is one class's resources of one type, prepared once per Apply so
// that every response is built from shared pieces: a wildcard SotW response
// reuses anys as is, a delta response picks from deltas. Nothing here is
// per stream, and nothing is mutated after Apply publishes it.
type typeIndex struct {
	// list is sorted by name (Update.Validate guarantees it); lookups by name
	// binary-search it instead of keeping a map per class and type.
	list []*Resource
	// anys[i] is the Any served for list[i]: the Resources slice of every
	// wildcard SotW response of this class and type.
	anys []*anypb.Any
	// deltas[i] wraps anys[i] for delta responses; equal resources of
	// different classes share one wrapper (see wrapperPool).
	deltas []*discovery.Resource
	// sum is an order-independent hash of the (name, version) set, updated
	// incrementally so a one-resource change costs O(1), not O(n).
	sum uint64
	// version is sum in hex: the version_info of wildcard SotW responses and
	// the "in sync" marker of delta subscriptions. It depends only on
	// content, so replicas and restarts agree on it.
	version string
}

// emptyIndex stands for a type a class has no resources of.
var emptyIndex = &typeIndex{version: versionOf(0)}

// find returns the position of name in t.list.
func (t *typeIndex) find(name string) (int, bool) {
	i := sort.Search(len(t.list), func(i int) bool { return t.list[i].Name >= name })
	return i, i < len(t.list) && t.list[i].Name == name
}

// typeDiff is what changed in one class's type between two Applies: the
// wrappers of new or changed resources and the names of removed ones. Apply
// hands it to waiting watches so that a one-service change touches
// O(changed) per stream, not O(resources).
type typeDiff struct {
	changed []*discovery.Resource
	removed []string
}

func (d typeDiff) empty() bool { return len(d.changed) == 0 && len(d.removed) == 0 }

// entryHash hashes one (name, version) pair. FNV is deterministic across
// processes, unlike maphash, so every replica computes the same versions.
func entryHash(name, version string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(version))
	return h.Sum64()
}

func versionOf(sum uint64) string { return fmt.Sprintf("%016x", sum) }

// wrapperKey identifies a resource's content across classes.
type wrapperKey struct{ typeURL, name, version string }

// buildKey identifies one indexing job: the same old index merged with the
// same new list (same backing array) always gives the same result.
type buildKey struct {
	old   *typeIndex
	first **Resource
	n     int
}

type built struct {
	idx  *typeIndex
	diff typeDiff
}

// wrapperPool holds what one Apply shares between classes. Delta wrappers:
// with 1,000 unscoped classes one wrapper per resource instead of one per
// class and resource saves ~100 bytes × classes. Built indexes: classes
// handed the same list (render shares them, unscoped classes all get the
// same one) share one typeIndex and one diff, so Apply costs O(resources)
// once instead of once per class, and the anys and deltas slices exist once.
type wrapperPool struct {
	wrappers map[wrapperKey]*discovery.Resource
	built    map[buildKey]built
}

func newWrapperPool() *wrapperPool {
	return &wrapperPool{wrappers: map[wrapperKey]*discovery.Resource{}, built: map[buildKey]built{}}
}

func (p *wrapperPool) get(typeURL string, r *Resource) *discovery.Resource {
	k := wrapperKey{typeURL, r.Name, r.Version}
	if w, ok := p.wrappers[k]; ok {
		return w
	}
	w := &discovery.Resource{Name: r.Name, Version: r.Version, Resource: r.Any}
	p.wrappers[k] = w
	return w
}

// index is buildIndex, memoised for lists shared between classes.
func (p *wrapperPool) index(typeURL string, old *typeIndex, list []*Resource) (*typeIndex, typeDiff) {
	if len(list) == 0 {
		return buildIndex(typeURL, old, list, p)
	}
	k := buildKey{old, &list[0], len(list)}
	if b, ok := p.built[k]; ok {
		return b.idx, b.diff
	}
	idx, d := buildIndex(typeURL, old, list, p)
	p.built[k] = built{idx, d}
	return idx, d
}

// buildIndex merges the new list against the old index. Unchanged entries
// keep their old wrappers, so memory is not duplicated across revisions, and
// when nothing changed the old index itself is returned with an empty diff.
func buildIndex(typeURL string, old *typeIndex, list []*Resource, pool *wrapperPool) (*typeIndex, typeDiff) {
	if old == nil {
		old = emptyIndex
	}
	if len(old.list) == len(list) && (len(list) == 0 || &old.list[0] == &list[0]) {
		return old, typeDiff{} // the caller handed back the very same slice
	}
	var d typeDiff
	var changedAt []int // positions in list of d.changed
	sum := old.sum
	i, j := 0, 0
	for i < len(old.list) || j < len(list) {
		switch {
		case j == len(list) || (i < len(old.list) && old.list[i].Name < list[j].Name):
			d.removed = append(d.removed, old.list[i].Name)
			sum -= entryHash(old.list[i].Name, old.list[i].Version)
			i++
		case i == len(old.list) || list[j].Name < old.list[i].Name:
			changedAt = append(changedAt, j)
			sum += entryHash(list[j].Name, list[j].Version)
			j++
		default:
			if old.list[i].Version != list[j].Version {
				changedAt = append(changedAt, j)
				sum += entryHash(list[j].Name, list[j].Version) - entryHash(old.list[i].Name, old.list[i].Version)
			}
			i++
			j++
		}
	}
	if len(changedAt) == 0 && len(d.removed) == 0 {
		return old, d
	}
	t := &typeIndex{
		list:    list,
		anys:    make([]*anypb.Any, len(list)),
		deltas:  make([]*discovery.Resource, len(list)),
		sum:     sum,
		version: versionOf(sum),
	}
	// Second pass: reuse the old wrapper where the entry did not change.
	changed := changedAt
	i = 0
	for j, r := range list {
		if len(changed) > 0 && changed[0] == j {
			changed = changed[1:]
			t.deltas[j] = pool.get(typeURL, r)
			d.changed = append(d.changed, t.deltas[j])
		} else {
			for old.list[i].Name != r.Name {
				i++
			}
			t.deltas[j] = old.deltas[i]
		}
		t.anys[j] = t.deltas[j].GetResource()
	}
	return t, d
}

// buildClass indexes every type of one class against its previous views
// (built from prev): the shared part and the class's own part separately,
// so that a shared part is indexed once per Apply for every class pointing
// at it, and not at all when it is Same as the one prev had (render hands
// a fresh but equal layer to a class whose own resources changed). A type
// that disappears from the class gets a diff removing all of it.
func buildClass(old map[string]*view, prev, cfg *ClassConfig, pool *wrapperPool) (map[string]*view, map[string]typeDiff) {
	types := make(map[string]*view)
	diffs := make(map[string]typeDiff)
	var own, shared map[string][]*Resource
	keepBase := false
	if cfg != nil {
		own = cfg.Resources
		if cfg.Shared != nil {
			shared = cfg.Shared.Resources
			keepBase = prev != nil && prev.Shared != nil && prev.Shared.Same(cfg.Shared)
		}
	}
	build := func(typeURL string) {
		if _, done := types[typeURL]; done {
			return
		}
		ov := old[typeURL]
		if ov == nil {
			ov = emptyView
		}
		base, bd := ov.base, typeDiff{}
		if !keepBase {
			base, bd = pool.index(typeURL, ov.base, shared[typeURL])
		}
		mine, od := pool.index(typeURL, ov.own, own[typeURL])
		v := ov
		if base != ov.base || mine != ov.own {
			v = newView(base, mine)
		}
		types[typeURL] = v
		if d := combine(v, bd, od); !d.empty() {
			diffs[typeURL] = d
		}
	}
	for typeURL := range shared {
		build(typeURL)
	}
	for typeURL := range own {
		build(typeURL)
	}
	for typeURL, v := range types {
		if v.len() == 0 {
			delete(types, typeURL)
		}
	}
	for typeURL, ov := range old {
		if _, ok := shared[typeURL]; ok {
			continue
		}
		if _, ok := own[typeURL]; ok {
			continue
		}
		var d typeDiff
		for _, r := range ov.base.list {
			d.removed = append(d.removed, r.Name)
		}
		for _, r := range ov.own.list {
			d.removed = append(d.removed, r.Name)
		}
		if !d.empty() {
			slices.Sort(d.removed)
			diffs[typeURL] = d
		}
	}
	return types, diffs
}

// orderedTypes returns diffs' type URLs in snapshot's push order (secrets
// and clusters before the endpoints that fill them, listeners before the
// routes they name), then any others sorted.
func orderedTypes(diffs map[string]typeDiff) []string {
	out := make([]string, 0, len(diffs))
	for _, t := range snapshot.Types() {
		if _, ok := diffs[t]; ok {
			out = append(out, t)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(diffs)) {
		if snapshot.TypeIndex(t) < 0 {
			out = append(out, t)
		}
	}
	return out
}
