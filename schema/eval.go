package schema

import (
	"sync/atomic"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"

	"github.com/gitmesh/gitmesh/schema/model"
)

// entityKinds are the top-level fields of a mesh that hold named entities;
// each entity is checked against the schema on its own.
var entityKinds = []string{"services", "gateways", "external", "extensions", "tests"}

// evaluator holds the CUE state of one load. It is used by one goroutine
// only: cue.Value is not safe for concurrent use.
type evaluator struct {
	ctx     *cue.Context
	schema  cue.Value // the schema package
	meshDef cue.Value // #Mesh
	sources *model.Sources
	diags   model.Diagnostics
	// stop is set when the caller gave up waiting; the evaluator then
	// ends at the next entity instead of burning CPU for nobody.
	stop *atomic.Bool
	// entity is the path of the entity being checked; errors CUE reports
	// without a path are placed there.
	entity string
	// onEntity reports the entity being evaluated, for the timeout
	// diagnostic.
	onEntity func(path string)
	// seen dedupes errors that CUE reports more than once.
	seen map[string]bool
	// err is the first internal failure (never bad input).
	err error
	// tune is the load's choice of strategies.
	tune tuning
}

func newEvaluator(stop *atomic.Bool, sources *model.Sources, tune tuning) (*evaluator, error) {
	e := &evaluator{sources: sources, stop: stop, seen: map[string]bool{}, onEntity: func(string) {}, tune: tune}
	if err := e.renew(); err != nil {
		return nil, err
	}
	return e, nil
}

// renew starts a fresh CUE runtime with the schema compiled in it. A
// runtime keeps every instance it ever built, so the plain path renews it
// every few hundred entities to keep memory flat.
func (e *evaluator) renew() error {
	ctx := cuecontext.New()
	sv, err := compileSchema(ctx)
	if err != nil {
		return err
	}
	e.ctx, e.schema, e.meshDef = ctx, sv, sv.LookupPath(cue.ParsePath("#Mesh"))
	return nil
}

// evalData builds the user's data files as one package, with the schema's
// definitions in scope so users may refer to #Service and friends.
func (e *evaluator) evalData(files []*ast.File) (cue.Value, bool) {
	schemaAST, err := parseSchema()
	if err != nil {
		e.internal(err)
		return cue.Value{}, false
	}
	all := append(append([]*ast.File{}, files...), schemaAST...)
	v, err := buildFiles(e.ctx, "mesh", all)
	if err != nil {
		e.addErr(CodeSchema, err)
		return cue.Value{}, false
	}
	if err := v.Err(); err != nil {
		e.addErr(CodeSchema, err)
		// A conflict deep inside the data shows here too (and makes the
		// root's Kind bottom); only a root without fields stops the
		// per-entity checks, which report the rest.
		if _, ferr := v.Fields(); ferr != nil {
			return cue.Value{}, false
		}
	}
	return v, true
}

// checkMesh applies the schema to evaluated data entity by entity and
// decodes the result. Entities with errors are left out of the mesh; their
// errors are in e.diags. This is the general path, for repositories that
// use CUE beyond plain data (references, templates, comprehensions).
func (e *evaluator) checkMesh(data cue.Value, dec *decoder) {
	it, err := data.Fields()
	if err != nil {
		e.addErr(CodeSchema, err)
		return
	}
	for it.Next() {
		if label := it.Selector().String(); !knownTop[label] {
			e.add(CodeSchema, label, "field not allowed", nil)
		}
	}
	e.checkMeshBlock(data.LookupPath(cue.MakePath(cue.Str("mesh"))), dec)
	for _, kind := range entityKinds {
		kv := data.LookupPath(cue.MakePath(cue.Str(kind)))
		if !kv.Exists() {
			continue
		}
		if kv.Kind() != cue.StructKind {
			e.validate(e.meshDef.LookupPath(cue.MakePath(cue.Str(kind))).Unify(kv))
			continue
		}
		it, err := kv.Fields()
		if err != nil {
			e.addErr(CodeSchema, err)
			continue
		}
		for it.Next() {
			if e.stop.Load() {
				return
			}
			e.checkEntity(kind, it.Selector(), it.Value(), dec)
		}
	}
}

// knownTop are the top-level fields of a mesh.
var knownTop = map[string]bool{"mesh": true, "services": true, "gateways": true, "external": true, "extensions": true, "tests": true}

// checkMeshBlock checks and decodes the mesh block; v may not exist, as
// the block's defaults apply without it.
func (e *evaluator) checkMeshBlock(v cue.Value, dec *decoder) {
	if mv, ok := e.meshBlock(v); ok {
		dec.meshConfig(mv, e)
	}
}

// meshBlock unifies the mesh block with its schema and validates it.
func (e *evaluator) meshBlock(v cue.Value) (cue.Value, bool) {
	meshVal := e.meshDef.LookupPath(cue.MakePath(cue.Str("mesh")))
	if v.Exists() {
		meshVal = meshVal.Unify(v)
	}
	e.entity = "mesh"
	e.onEntity(e.entity)
	return meshVal, e.validate(meshVal)
}

// checkEntity checks one entity of kind against the schema and decodes it.
func (e *evaluator) checkEntity(kind string, sel cue.Selector, v cue.Value, dec *decoder) {
	e.entity = kind + "." + sel.String()
	e.onEntity(e.entity)
	// Filling the entity into the kind's struct applies its pattern
	// constraint ([Name=#Name]: #Service & …), so the name check and
	// name-based defaults behave exactly as in #Mesh.
	p := cue.MakePath(sel)
	ev := e.meshDef.LookupPath(cue.MakePath(cue.Str(kind))).FillPath(p, v).LookupPath(p)
	if e.validate(ev) {
		dec.entity(kind, sel.Unquoted(), ev, e)
	}
}

// validate checks v fully and concretely, recording every error.
func (e *evaluator) validate(v cue.Value) bool {
	err := v.Validate(cue.Concrete(true), cue.All())
	if err == nil {
		return true
	}
	e.addErr("", err)
	return false
}

// internal records a failure of the loader itself; Load returns it as err.
func (e *evaluator) internal(err error) {
	if e.err == nil {
		e.err = err
	}
}
