package schema

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Most mesh repositories are plain data: CUE files that are only literal
// structs and lists, YAML and JSON. For them the loader skips evaluating
// the whole repository as one package: it splits the syntax by entity
// (services.reviews from every file that mentions it), compiles and checks
// each entity on its own, and spreads entities over workers with one CUE
// runtime each. Measured at 10,000 services this saves the whole-package
// evaluation (about a quarter of the CPU and 350 MB of live heap) and lets
// both cores work. Anything beyond plain data (a reference, a template, a
// comprehension, an import) takes the general path, which gives the same
// result for plain data.

// plainMesh is a repository's plain data split by entity.
type plainMesh struct {
	mesh     []ast.Expr
	entities []*plainEntity
	// unknown are top-level labels the model does not have.
	unknown []plainLabel
}

// plainEntity is one unit of checking: an entity (kind and name), the
// mesh block (kind "mesh"), or the top-level labels the model does not
// have (kind "", unknown set).
// entityIndex groups parts by (kind, name) in first-seen order; the cold
// and the incremental path both use it, so they group identically.
type entityIndex struct {
	byKey map[[2]string]*plainEntity
	list  []*plainEntity
}

// get returns the entity of kind and name, adding it on first sight.
func (ix *entityIndex) get(kind, name string) *plainEntity {
	key := [2]string{kind, name}
	pe := ix.byKey[key]
	if pe == nil {
		if ix.byKey == nil {
			ix.byKey = map[[2]string]*plainEntity{}
		}
		pe = &plainEntity{kind: kind, name: name}
		ix.byKey[key] = pe
		ix.list = append(ix.list, pe)
	}
	return pe
}

type plainEntity struct {
	kind, name string
	exprs      []ast.Expr
	unknown    []plainLabel
	// refs are the entity's parts, for a load with a Cache.
	refs []partRef
}

type plainLabel struct {
	name string
	pos  token.Pos
}

// filePart is one top-level contribution of a plain file: a value of an
// entity, of the mesh block (kind "mesh"), or a top-level label the model
// does not have (kind "", name is the label).
type filePart struct {
	kind, name string
	label      token.Pos
	// fp fingerprints the part's syntax with its positions (see
	// fingerprint.go); set only when the load uses a Cache.
	fp [32]byte
}

// splitFile lists a file's top-level contributions in source order, with
// the value expression of each part (nil for unknown labels); ok is false
// as soon as the file uses more than plain data.
func splitFile(f *ast.File, withFP bool) (parts []filePart, values []ast.Expr, ok bool) {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.Package, *ast.CommentGroup, *ast.Attribute:
			continue
		case *ast.Field:
			name, ok := plainLabelName(d)
			if !ok || !isPlain(d.Value) {
				return nil, nil, false
			}
			switch {
			case name == "mesh":
				p := filePart{kind: "mesh", label: d.Label.Pos()}
				if withFP {
					p.fp = fingerprint(f.Filename, "mesh", d.Label, d.Value)
				}
				parts, values = append(parts, p), append(values, d.Value)
			case knownTop[name]:
				st, ok := d.Value.(*ast.StructLit)
				if !ok {
					return nil, nil, false
				}
				for _, el := range st.Elts {
					ef, ok := el.(*ast.Field)
					if !ok {
						if _, c := el.(*ast.CommentGroup); c {
							continue
						}
						return nil, nil, false
					}
					en, ok := plainLabelName(ef)
					if !ok {
						return nil, nil, false
					}
					p := filePart{kind: name, name: en, label: ef.Label.Pos()}
					if withFP {
						p.fp = fingerprint(f.Filename, name, ef.Label, ef.Value)
					}
					parts, values = append(parts, p), append(values, ef.Value)
				}
			default:
				parts = append(parts, filePart{name: name, label: d.Label.Pos()})
				values = append(values, nil)
			}
		default:
			return nil, nil, false
		}
	}
	return parts, values, true
}

// splitPlain splits files by entity; ok is false as soon as any file uses
// more than plain data.
func splitPlain(files []*ast.File) (*plainMesh, bool) {
	pm := &plainMesh{}
	var ix entityIndex
	for _, f := range files {
		parts, values, ok := splitFile(f, false)
		if !ok {
			return nil, false
		}
		for i, p := range parts {
			switch p.kind {
			case "mesh":
				pm.mesh = append(pm.mesh, values[i])
			case "":
				pm.unknown = append(pm.unknown, plainLabel{name: p.name, pos: p.label})
			default:
				pe := ix.get(p.kind, p.name)
				pe.exprs = append(pe.exprs, values[i])
			}
		}
	}
	pm.entities = ix.list
	sortEntities(pm.entities)
	return pm, true
}

// sortEntities orders entities by kind (as in entityKinds), then name, so
// every load checks and reports them in the same order.
func sortEntities(es []*plainEntity) {
	kindOrder := map[string]int{}
	for i, k := range entityKinds {
		kindOrder[k] = i
	}
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.kind != b.kind {
			return kindOrder[a.kind] < kindOrder[b.kind]
		}
		return a.name < b.name
	})
}

// jobs lists what checkPlain checks, in report order: unknown labels (if
// any), the mesh block, then every entity.
func (pm *plainMesh) jobs() []*plainEntity {
	var jobs []*plainEntity
	if len(pm.unknown) > 0 {
		jobs = append(jobs, &plainEntity{unknown: pm.unknown})
	}
	jobs = append(jobs, &plainEntity{kind: "mesh", exprs: pm.mesh})
	return append(jobs, pm.entities...)
}

// plainLabelName is the name of a regular field with a literal label and
// no constraint marker (? or !).
func plainLabelName(f *ast.Field) (string, bool) {
	if f.Constraint != token.ILLEGAL {
		return "", false
	}
	switch f.Label.(type) {
	case *ast.Ident, *ast.BasicLit:
	default:
		return "", false
	}
	return labelName(f.Label)
}

// isPlain reports whether x is literal data.
func isPlain(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.BasicLit:
		return true
	case *ast.UnaryExpr:
		_, ok := x.X.(*ast.BasicLit)
		return ok && (x.Op == token.SUB || x.Op == token.ADD)
	case *ast.ListLit:
		for _, e := range x.Elts {
			if !isPlain(e) {
				return false
			}
		}
		return true
	case *ast.StructLit:
		for _, d := range x.Elts {
			switch d := d.(type) {
			case *ast.Field:
				if _, ok := plainLabelName(d); !ok || !isPlain(d.Value) {
					return false
				}
			case *ast.CommentGroup, *ast.Attribute:
			default:
				return false
			}
		}
		return true
	}
	return false
}

// defaultRenewEvery is how many entities a worker checks in one CUE
// runtime unless tuning says otherwise; see evaluator.renew.
const defaultRenewEvery = 128

// plainResult is what checking one plainEntity gave.
type plainResult struct {
	// value is the decoded entity (see decodeEntity) or *model.MeshConfig;
	// nil when it did not decode.
	value any
	json  []byte
	diags model.Diagnostics
}

// checkPlain checks jobs on several workers, each with its own CUE
// runtime. Results are per job, so callers merge them in job order and the
// outcome does not depend on the number of workers.
func checkPlain(jobs []*plainEntity, stop *atomic.Bool, sources *model.Sources, needJSON bool, onEntity func(string), tune tuning) ([]plainResult, error) {
	n := tune.workers
	if n <= 0 {
		n = min(runtime.GOMAXPROCS(0), 4)
	}
	renewEvery := tune.renewEvery
	if renewEvery <= 0 {
		renewEvery = defaultRenewEvery
	}
	n = max(1, min(n, len(jobs)))
	results := make([]plainResult, len(jobs))
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				// A panic cannot cross goroutines: catch it here.
				if p := recover(); p != nil {
					errs[w] = fmt.Errorf("check mesh (worker %d): cue panicked: %v\n%s", w, p, debug.Stack())
				}
			}()
			e, err := newEvaluator(stop, sources, tune)
			if err != nil {
				errs[w] = err
				return
			}
			e.onEntity = onEntity
			done := 0
			for i := w; i < len(jobs); i += n {
				if stop.Load() {
					break
				}
				if done++; done%renewEvery == 0 {
					if errs[w] = e.renew(); errs[w] != nil {
						return
					}
				}
				pe := jobs[i]
				before := len(e.diags)
				r := &results[i]
				switch pe.kind {
				case "":
					for _, u := range pe.unknown {
						e.add(CodeSchema, model.Path(u.name), "field not allowed", []token.Pos{u.pos})
					}
				case "mesh":
					r.value, r.json = e.checkPlainMesh(pe.exprs, needJSON)
				default:
					r.value, r.json = e.checkPlainEntity(pe, needJSON)
				}
				r.diags = e.diags[before:len(e.diags):len(e.diags)]
				// Drop the syntax: at 10,000 services the ASTs were most
				// of the live heap, and GC time grows with it.
				pe.exprs = nil
			}
			errs[w] = e.err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

// putResults merges checked jobs into dec in job order and returns their
// diagnostics in the same order.
func putResults(dec *decoder, jobs []*plainEntity, results []plainResult) model.Diagnostics {
	var diags model.Diagnostics
	for i, pe := range jobs {
		dec.putResult(pe.kind, pe.name, results[i])
		diags = append(diags, results[i].diags...)
	}
	return diags
}

// putResult adds one checked job's value to dec.
func (d *decoder) putResult(kind, name string, r plainResult) {
	switch x := r.value.(type) {
	case nil:
	case *model.MeshConfig:
		d.mesh.Mesh, d.meshJSON, d.hasMesh = *x, r.json, true
	default:
		d.put(kind, name, x, r.json)
	}
}

// checkPlainEntity compiles the entity's syntax together with the
// schema as one expression, #Mesh & {KIND: NAME: DATA}, so CUE evaluates
// the entity once; building the data first and unifying it with the
// schema afterwards evaluated it twice (measured: 40% more allocation).
func (e *evaluator) checkPlainEntity(pe *plainEntity, needJSON bool) (any, []byte) {
	sel := cue.Str(pe.name)
	e.entity = pe.kind + "." + sel.String()
	e.onEntity(e.entity)
	// Unifying with #Mesh itself, not a selection such as #Mesh.services,
	// keeps the definition's closedness (measured: a selection lets typos
	// through) and gives errors the full path.
	x := &ast.BinaryExpr{
		X:  ast.NewIdent("#Mesh"),
		Op: token.AND,
		Y: ast.NewStruct(&ast.Field{Label: ast.NewIdent(pe.kind), Value: ast.NewStruct(
			&ast.Field{Label: ast.NewString(pe.name), Value: unifyAll(pe.exprs)})}),
	}
	// BuildFile, not BuildExpr: in cue v0.17.1 BuildExpr does not enforce
	// closedness, so a typo'd field passed silently (measured).
	f := &ast.File{Filename: "$entity", Decls: []ast.Decl{&ast.EmbedDecl{Expr: x}}}
	v := e.ctx.BuildFile(f, cue.Scope(e.schema)).LookupPath(cue.MakePath(cue.Str(pe.kind), sel))
	if !e.validate(v) {
		return nil, nil
	}
	val, b, ok := decodeEntity(pe.kind, pe.name, v, e, needJSON)
	if !ok {
		return nil, nil
	}
	return val, b
}

// checkPlainMesh checks the mesh block, which may be written nowhere.
func (e *evaluator) checkPlainMesh(exprs []ast.Expr, needJSON bool) (any, []byte) {
	v := cue.Value{}
	if len(exprs) > 0 {
		f := &ast.File{Filename: "$mesh", Decls: []ast.Decl{&ast.EmbedDecl{Expr: unifyAll(exprs)}}}
		v = e.ctx.BuildFile(f)
	}
	mv, ok := e.meshBlock(v)
	if !ok {
		return nil, nil
	}
	mc, b, ok := decodeMeshConfig(mv, e, needJSON)
	if !ok {
		return nil, nil
	}
	return mc, b
}

// unifyAll joins expressions with &.
func unifyAll(exprs []ast.Expr) ast.Expr {
	x := exprs[0]
	for _, y := range exprs[1:] {
		x = &ast.BinaryExpr{X: x, Op: token.AND, Y: y}
	}
	return x
}
