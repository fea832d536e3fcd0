package xds

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gitmesh/gitmesh/internal/nodeid"
)

// classState is the served configuration of one proxy class and the watches
// its streams hold. Every instance of the class shares it: memory is one copy
// per class, never per node.
type classState struct {
	name string

	// cfg is the ClassConfig the current types were built from; only Apply
	// (serialised by Server.applyMu) reads or writes it.
	cfg *ClassConfig

	mu sync.Mutex
	// types is replaced wholesale by Apply and read by watches, both under mu.
	types map[string]*view
	// removed marks a class a later revision dropped: its connected streams
	// are told to delete everything, new streams are refused.
	removed bool
	// watches are the open (waiting) watches by type URL.
	watches map[string]map[*watch]struct{}
}

func newClassState(name string) *classState {
	return &classState{name: name, types: map[string]*view{}, watches: map[string]map[*watch]struct{}{}}
}

// index returns the class's index for typeURL; callers hold cs.mu.
func (cs *classState) index(typeURL string) *view {
	if t, ok := cs.types[typeURL]; ok {
		return t
	}
	return emptyView
}

// classPlan is one class's new state, built before any lock is taken.
type classPlan struct {
	cs      *classState
	types   map[string]*view
	diffs   map[string]typeDiff
	removed bool
}

// Apply swaps the served configuration for u and pushes to connected streams
// only what changed for them: a stream whose resources are untouched gets
// nothing, a delta stream gets only changed and removed resources. Each class
// switches atomically; an invalid update is refused whole and the previous one
// keeps being served. Lists handed to Apply must not be modified afterwards.
func (s *Server) Apply(u Update) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	start := time.Now()

	s.mu.RLock()
	old := s.classes
	s.mu.RUnlock()
	served := func(class string, cfg *ClassConfig) bool {
		cs := old[class]
		return cs != nil && cs.cfg.Same(cfg) && cfg != nil && !cs.removed
	}
	if err := u.ValidateChanged(served); err != nil {
		return fmt.Errorf("apply revision %q: %w", u.Revision, err)
	}

	pool := newWrapperPool()
	next := make(map[string]*classState, len(u.Classes))
	var plans []classPlan
	for _, name := range slices.Sorted(maps.Keys(u.Classes)) {
		cfg := u.Classes[name]
		cs := old[name]
		if cs == nil {
			cs = newClassState(name)
		}
		next[name] = cs
		if cs.cfg.Same(cfg) && cfg != nil && !cs.removed {
			// An unchanged class, the same object or one with the same
			// content version: O(1). The served object stays.
			continue
		}
		prev := cs.cfg
		cs.cfg = cfg
		types, diffs := buildClass(cs.types, prev, cfg, pool)
		plans = append(plans, classPlan{cs: cs, types: types, diffs: diffs})
	}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if _, ok := next[name]; ok {
			continue
		}
		cs := old[name]
		if cs.removed && !cs.hasWatches() {
			continue // dropped two revisions ago and nobody is left
		}
		next[name] = cs
		if !cs.removed {
			prev := cs.cfg
			cs.cfg = nil
			types, diffs := buildClass(cs.types, prev, nil, pool)
			plans = append(plans, classPlan{cs: cs, types: types, diffs: diffs, removed: true})
		}
	}

	gained, lost := baseChanges(plans)
	s.bases.update(gained, lost, time.Now())
	s.names.Store(&nameCache{})
	s.mu.Lock()
	s.classes = next
	s.revision = u.Revision
	s.rev.Store(&u.Revision)
	s.classNames = slices.Sorted(maps.Keys(u.Classes))
	s.known = summarizeClasses(s.classNames)
	s.mu.Unlock()

	pushed := 0
	for _, p := range plans {
		pushed += p.cs.swap(p, u.Revision)
	}
	s.metrics.applied(time.Since(start), len(u.Classes))
	s.log.Info("xds config applied", "revision", u.Revision, "classes", len(u.Classes),
		"changedClasses", len(plans), "watchesWoken", pushed, "took", time.Since(start))
	return nil
}

// swap publishes a class's new state and wakes the watches the change
// concerns, in push order. It returns the number of watches that responded.
func (cs *classState) swap(p classPlan, revision string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := cs.types
	cs.types = p.types
	cs.removed = p.removed
	fired := 0
	for _, typeURL := range orderedTypes(p.diffs) {
		d := p.diffs[typeURL]
		idx := cs.index(typeURL)
		prev := old[typeURL]
		if prev == nil {
			prev = emptyView
		}
		for w := range cs.watches[typeURL] {
			if w.wake(prev, idx, d, revision) {
				delete(cs.watches[typeURL], w)
				fired++
			}
		}
	}
	return fired
}

func (cs *classState) hasWatches() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, ws := range cs.watches {
		if len(ws) > 0 {
			return true
		}
	}
	return false
}

// Revision returns the revision last applied, or "" before the first Apply.
func (s *Server) Revision() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revision
}

// current is Revision without the lock, for watches that hold a class lock.
// Responses are labelled with the server's revision, not the one their
// class last changed in: an unchanged class's config is that revision's too.
func (s *Server) current() string {
	if r := s.rev.Load(); r != nil {
		return *r
	}
	return ""
}

// Classes returns the names of the classes currently served, sorted.
func (s *Server) Classes() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.classNames)
}

// summarizeClasses counts served classes by kind ("sidecar/…: 1200,
// ingress/…: 2"), for the error an unknown node receives: the whole list
// would be megabytes at scale, the summary says what kinds exist.
func summarizeClasses(names []string) string {
	counts := map[string]int{}
	for _, name := range names {
		kind := "other"
		if c, err := nodeid.ParseClass(name); err == nil {
			kind = c.Kind
		}
		counts[kind]++
	}
	if len(counts) == 0 {
		return "no classes are served"
	}
	parts := make([]string, 0, len(counts))
	for _, kind := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d %s/…", counts[kind], kind))
	}
	return "served classes: " + strings.Join(parts, ", ")
}
