package schema

import (
	"crypto/sha256"
	"strings"
	"sync"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Cache makes loading incremental: a commit that changes one service file
// of 10,000 re-parses that file and re-checks that one service, and takes
// everything else from the previous load. Pass the same Cache in
// Options.Cache to every Load of one repository (the reconciler keeps one
// for the life of `gitmesh serve`).
//
// What is kept, per data file (keyed by path and SHA-256 of its bytes):
// its syntax errors, the Sources entries it records and its top-level
// parts; per entity (keyed as described in fingerprint.go): the decoded
// model value, its JSON and its diagnostics. A cached load returns exactly
// what a load without a cache returns (TestCacheColdWarm).
//
// Only plain-data repositories are cached; one file with a reference, a
// comprehension or an import sends the whole load down the general path,
// uncached. User guardrails whose checks are entity-local re-run only on
// changed entities (railcache.go); others re-run over the whole mesh.
//
// Memory is bounded by one revision: a load that finishes keeps only the
// entries it used. A load that stops early (timeout, syntax errors) keeps
// the entities cached before as well, so fixing a broken commit is still
// incremental; the next finished load trims the cache again.
//
// A Cache is safe for concurrent use. Concurrent loads through one Cache
// are correct, but each keeps only its own entries when it finishes, so
// loads of different revisions at once (a pull request check next to
// serve) should use different Caches.
type Cache struct {
	mu    sync.Mutex
	gen   *generation
	stats CacheStats
}

// NewCache returns an empty Cache.
func NewCache() *Cache { return &Cache{gen: newGeneration()} }

// CacheStats says how much work the last load through a Cache did, for
// metrics and for tests that check a change stays incremental.
type CacheStats struct {
	Files       int // data files in the repository
	FilesParsed int // files parsed because they were new or changed
	// Entities counts the entities plus the mesh block; EntitiesChecked
	// those evaluated by CUE, the rest came from the cache.
	Entities, EntitiesChecked int
	// General is set when the repository was not plain data and took the
	// general (uncached) path.
	General bool
	// RailsWhole is set when guardrails ran over the whole mesh; else
	// RailsChecked counts the entities they ran on (the rest were cached).
	RailsWhole   bool
	RailsChecked int
}

// Stats returns the figures of the last load that used c.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// setStats records the figures of a load that ran elsewhere (in the
// sandbox's worker, through the worker's own cache).
func (c *Cache) setStats(st CacheStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = st
}

// generation is what one load used. It is never changed once committed,
// so loads read it without locking.
type generation struct {
	files    map[fileKey]*fileSummary
	entities map[[32]byte]*plainResult
	// rails holds each entity's guardrail findings, keyed by entity and
	// guardrail files (see checkRailsByEntity).
	rails map[[32]byte][]railFinding
}

func newGeneration() *generation {
	return &generation{files: map[fileKey]*fileSummary{}, entities: map[[32]byte]*plainResult{},
		rails: map[[32]byte][]railFinding{}}
}

// fileKey names one version of one file.
type fileKey struct {
	path string
	sum  [32]byte
}

// fileSummary is what a load needs of a file without parsing it again.
type fileSummary struct {
	diags   model.Diagnostics // syntax errors
	plain   bool
	parts   []filePart
	sources []srcEntry
}

func (c *Cache) current() *generation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// commit makes next the cache's content. With keepOld (the load did not
// finish) the entities cached before are kept as well.
func (c *Cache) commit(next *generation, stats CacheStats, keepOld bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = stats
	if keepOld {
		for k, v := range c.gen.entities {
			if _, ok := next.entities[k]; !ok {
				next.entities[k] = v
			}
		}
		for k, v := range c.gen.rails {
			if _, ok := next.rails[k]; !ok {
				next.rails[k] = v
			}
		}
	}
	c.gen = next
}

// entityKey is the cache key of an entity (kind "mesh" for the mesh
// block) made of parts with fingerprints fps; ok is false when a part has
// none.
func entityKey(kind, name string, fps [][32]byte) (key [32]byte, ok bool) {
	h := sha256.New()
	sh := schemaHash()
	h.Write(sh[:])
	// Cached loads always decode through JSON (they keep it), so how
	// other loads decode does not enter the key.
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(name))
	h.Write([]byte{0})
	for _, fp := range fps {
		if fp == ([32]byte{}) {
			return key, false
		}
		h.Write(fp[:])
	}
	h.Sum(key[:0])
	return key, true
}

// ownDiags reports whether every diagnostic is about the entity at prefix
// (its position then comes from the entity's own Sources entries); other
// results are not cached.
func ownDiags(prefix string, ds model.Diagnostics) bool {
	for _, d := range ds {
		p := d.Path
		if p != prefix && !strings.HasPrefix(p, prefix+".") && !strings.HasPrefix(p, prefix+"[") {
			return false
		}
	}
	return true
}

// stored is the cache's private copy of a result.
func (r plainResult) stored() *plainResult {
	return &plainResult{value: cloneModel(r.value), json: r.json, diags: r.diags}
}

// fresh is a copy of a cached result for one load.
func (r *plainResult) fresh() plainResult {
	return plainResult{value: cloneModel(r.value), json: r.json, diags: r.diags}
}
