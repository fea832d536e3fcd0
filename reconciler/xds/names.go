package xds

import (
	"sync"
	"weak"
)

// nameSet is the resource names of a SotW request, decoded once and
// shared, read-only, by every subscription that names them. An unscoped
// Envoy's EDS request names every cluster of the mesh, every ACK repeats
// them, and every stream of such a mesh sends the same list: decoding
// each into its own list, map and hash was most of what a SotW stream
// cost the server to full convergence.
type nameSet struct {
	names      []string            // as the request listed them
	subscribed map[string]struct{} // names without "*"; never changed
	explicit   bool                // "*" is among them
	hash       uint64              // nameSetHash(subscribed)

	mu      sync.Mutex
	covered []coverMemo // the last few large indexes asked about, newest last
}

// coverMemo remembers whether a set names every resource of an index. The
// pointer is weak so that a memo does not keep an old revision's index.
type coverMemo struct {
	idx weak.Pointer[typeIndex]
	all bool
}

// explicitWildcard is the name that subscribes to every resource.
const explicitWildcard = "*"

// noNames is the set of a subscription that names nothing.
var noNames = newNameSet(nil)

func newNameSet(names []string) *nameSet {
	if names == nil {
		names = []string{}
	}
	ns := &nameSet{names: names, subscribed: make(map[string]struct{}, len(names))}
	for _, name := range names {
		if name == explicitWildcard {
			ns.explicit = true
		} else {
			ns.subscribed[name] = struct{}{}
		}
	}
	ns.hash = nameSetHash(ns.subscribed)
	return ns
}

// memoFrom is the index size from which covers remembers its answer;
// below it, asking the map again is as cheap.
const memoFrom = 64

// maxCoverMemos bounds the memos of one set: a class's view has two
// parts, and a revision change brings new ones.
const maxCoverMemos = 4

// covers reports whether the set names every resource of v, so that the
// subscription's response is the view's whole list. Unscoped classes share
// their large part (view.base), so it is looked through once per set, not
// once per stream.
func (ns *nameSet) covers(v *view) bool {
	return len(ns.subscribed) >= v.len() && ns.coversIndex(v.base) && ns.coversIndex(v.own)
}

func (ns *nameSet) coversIndex(idx *typeIndex) bool {
	if len(idx.list) > len(ns.subscribed) {
		return false
	}
	if len(idx.list) < memoFrom {
		return ns.namesAll(idx)
	}
	ns.mu.Lock()
	for _, m := range ns.covered {
		if m.idx.Value() == idx {
			ns.mu.Unlock()
			return m.all
		}
	}
	ns.mu.Unlock()
	all := ns.namesAll(idx) // outside the lock; two racing callers agree
	ns.mu.Lock()
	if len(ns.covered) >= maxCoverMemos {
		ns.covered = append(ns.covered[:0], ns.covered[1:]...)
	}
	ns.covered = append(ns.covered, coverMemo{idx: weak.Make(idx), all: all})
	ns.mu.Unlock()
	return all
}

func (ns *nameSet) namesAll(idx *typeIndex) bool {
	for _, r := range idx.list {
		if _, ok := ns.subscribed[r.Name]; !ok {
			return false
		}
	}
	return true
}

// nameSetKey identifies an encoded name list: its bytes' maphash, length
// and name count. A 64-bit hash with a per-process random seed is what the
// sync entry already trusts (nameSetHash).
type nameSetKey struct {
	sum   uint64
	size  int
	count int
}

// nameSetBudget bounds the names the cache holds: the lists of a few
// dozen large classes. Streams keep their sets whether cached or not.
const nameSetBudget = 1 << 18

// nameSetCache maps encoded name lists to their decoded sets.
type nameSetCache struct {
	mu    sync.Mutex
	sets  map[nameSetKey]*nameSet
	names int // in sets
}

func (c *nameSetCache) get(k nameSetKey) *nameSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sets[k]
}

// put caches ns under k and returns the cached set (another stream's, if it
// got there first). Past the budget the cache starts over.
func (c *nameSetCache) put(k nameSetKey, ns *nameSet) *nameSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.sets[k]; ok {
		return prev
	}
	if c.sets == nil || c.names+len(ns.names) > nameSetBudget {
		c.sets, c.names = map[nameSetKey]*nameSet{}, 0
	}
	c.sets[k] = ns
	c.names += len(ns.names)
	return ns
}
