package schema

import (
	"crypto/sha256"
	"fmt"
	"sync/atomic"

	"cuelang.org/go/cue/ast"

	"github.com/gitmesh/gitmesh/schema/model"
)

// evaluateCached is evaluate for a load with a Cache. It parses only the
// files the cache has not seen, rebuilds Sources from the files'
// summaries, and checks only the entities whose parts changed. ok is false
// when the repository is not plain data: the caller then takes the general
// path, uncached.
func evaluateCached(files repoFiles, stop *atomic.Bool, ref *evaluatorRef, c *Cache, tune tuning) (r loadResult, ok bool) {
	gen := c.current()
	next := newGeneration()
	stats := CacheStats{Files: len(files.data)}
	lf := &loadFiles{data: files.data, sums: make([]*fileSummary, len(files.data)),
		values: make([][]ast.Expr, len(files.data))}
	var todo []int
	keys := make([]fileKey, len(files.data))
	for i, f := range files.data {
		keys[i] = fileKey{path: f.path, sum: sha256.Sum256(f.src)}
		if s := gen.files[keys[i]]; s != nil {
			lf.sums[i] = s
		} else {
			todo = append(todo, i)
		}
	}
	lf.summarize(todo)
	stats.FilesParsed = len(todo)
	for i, k := range keys {
		next.files[k] = lf.sums[i]
	}
	// Only a load that finished may drop entities: after a syntax error
	// or a timeout, the next load still wants the last good ones.
	keepOld := true
	defer func() { c.commit(next, stats, keepOld) }()

	var diags model.Diagnostics
	size := 0
	for _, s := range lf.sums {
		size += len(s.sources)
	}
	sources := model.NewSourcesSize(size)
	plain := true
	for _, s := range lf.sums {
		diags = append(diags, s.diags...)
		for _, e := range s.sources {
			sources.Set(e.path, e.pos)
		}
		plain = plain && s.plain
	}
	ref.sources.Store(sources)
	ref.set("")
	if len(diags) > 0 {
		// As in evaluate: syntax first.
		return loadResult{diags: diags}, true
	}
	if !plain {
		stats.General, keepOld = true, false
		return loadResult{}, false
	}

	all := lf.group()
	results := make([]plainResult, len(all))
	ekeys := make([][32]byte, len(all))
	cacheable := make([]bool, len(all))
	var jobs []*plainEntity
	var jobIdx []int
	for i, pe := range all {
		if pe.kind != "" {
			stats.Entities++
			fps := make([][32]byte, len(pe.refs))
			for j, ref := range pe.refs {
				fps[j] = lf.sums[ref.file].parts[ref.part].fp
			}
			ekeys[i], cacheable[i] = entityKey(pe.kind, pe.name, fps)
			if hit := gen.entities[ekeys[i]]; cacheable[i] && hit != nil {
				results[i] = hit.fresh()
				next.entities[ekeys[i]] = hit
				continue
			}
			if err := lf.exprs(pe); err != nil {
				return loadResult{err: err}, true
			}
			stats.EntitiesChecked++
		}
		jobs = append(jobs, pe)
		jobIdx = append(jobIdx, i)
	}
	checked, err := checkPlain(jobs, stop, sources, true, func(s string) { ref.set(s) }, tune)
	if err != nil {
		return loadResult{err: err}, true
	}
	for j, i := range jobIdx {
		results[i] = checked[j]
		pe := all[i]
		prefix := model.Path(pe.kind, pe.name)
		if pe.kind == "mesh" {
			prefix = "mesh"
		}
		if cacheable[i] && !stop.Load() && ownDiags(prefix, checked[j].diags) {
			next.entities[ekeys[i]] = checked[j].stored()
		}
	}

	keepJSON := len(files.guardrails) > 0
	dec := newDecoder(keepJSON)
	diags = append(diags, putResults(dec, all, results)...)
	m := dec.mesh
	m.Sources = sources
	if keepJSON && !stop.Load() {
		ref.set(guardrailStage)
		e, err := newEvaluator(stop, sources, tune)
		if err != nil {
			return loadResult{err: err}, true
		}
		e.onEntity = func(s string) { ref.set(s) }
		if railsByEntity(files.guardrails) {
			var items []railItem
			for i, pe := range all {
				if pe.kind == "" || pe.kind == "mesh" || results[i].value == nil {
					continue
				}
				it := railItem{kind: pe.kind, name: pe.name, json: results[i].json}
				if cacheable[i] {
					it.key = ekeys[i]
				}
				items = append(items, it)
			}
			ds, checked := e.checkRailsByEntity(files.guardrails, dec, items, gen, next)
			diags, stats.RailsChecked = append(diags, ds...), checked
		} else {
			diags, stats.RailsWhole = append(diags, e.checkGuardrails(files.guardrails, dec)...), true
		}
		if e.err != nil {
			return loadResult{err: e.err}, true
		}
	}
	keepOld = stop.Load()
	return loadResult{mesh: m, diags: diags}, true
}

// loadFiles is the data files of one cached load: every file's summary,
// and the value expressions of the files parsed in this load (nil for
// files taken from the cache until an entity needs them).
type loadFiles struct {
	data   []repoFile
	sums   []*fileSummary
	values [][]ast.Expr
}

// partRef names one part of one file.
type partRef struct{ file, part int }

// summarize parses and summarizes the files at idx on all cores (at
// 10,000 files, parsing and walking syntax for Sources took over a second
// of one core; they share no state).
func (lf *loadFiles) summarize(idx []int) {
	parallelParse(len(idx), func(k int) {
		i := idx[k]
		f, ds := parseData(lf.data[i], "mesh")
		s := &fileSummary{diags: ds}
		if f != nil {
			s.sources = sourceEntries(f)
			s.parts, lf.values[i], s.plain = splitFile(f, true)
		}
		lf.sums[i] = s
	})
}

// group joins the parts of all files into what checkPlain checks, in the
// order plainMesh.jobs gives, each with references to its parts.
func (lf *loadFiles) group() []*plainEntity {
	unknown := &plainEntity{}
	meshBlock := &plainEntity{kind: "mesh"}
	var ix entityIndex
	for fi, s := range lf.sums {
		for pi, p := range s.parts {
			ref := partRef{file: fi, part: pi}
			switch p.kind {
			case "mesh":
				meshBlock.refs = append(meshBlock.refs, ref)
			case "":
				unknown.unknown = append(unknown.unknown, plainLabel{name: p.name, pos: p.label})
			default:
				pe := ix.get(p.kind, p.name)
				pe.refs = append(pe.refs, ref)
			}
		}
	}
	entities := ix.list
	sortEntities(entities)
	var all []*plainEntity
	if len(unknown.unknown) > 0 {
		all = append(all, unknown)
	}
	all = append(all, meshBlock)
	return append(all, entities...)
}

// exprs fills pe.exprs from its parts, parsing again the files that came
// from the cache: their syntax is not kept, as ASTs were most of the heap.
func (lf *loadFiles) exprs(pe *plainEntity) error {
	pe.exprs = make([]ast.Expr, 0, len(pe.refs))
	for _, r := range pe.refs {
		if lf.values[r.file] == nil {
			f, ds := parseData(lf.data[r.file], "mesh")
			if f == nil || len(ds) > 0 {
				return fmt.Errorf("parse %s again: %v", lf.data[r.file].path, ds)
			}
			_, values, ok := splitFile(f, false)
			if !ok || len(values) != len(lf.sums[r.file].parts) {
				return fmt.Errorf("parse %s again: the syntax differs from the cached summary", lf.data[r.file].path)
			}
			lf.values[r.file] = values
		}
		pe.exprs = append(pe.exprs, lf.values[r.file][r.part])
	}
	return nil
}
