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

type plainEntity struct {
	kind, name string
	exprs      []ast.Expr
}

type plainLabel struct {
	name string
	pos  token.Pos
}

// splitPlain splits files by entity; ok is false as soon as any file uses
// more than plain data.
func splitPlain(files []*ast.File) (*plainMesh, bool) {
	pm := &plainMesh{}
	byKey := map[[2]string]*plainEntity{}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.Package, *ast.CommentGroup, *ast.Attribute:
				continue
			case *ast.Field:
				name, ok := plainLabelName(d)
				if !ok || !isPlain(d.Value) {
					return nil, false
				}
				switch {
				case name == "mesh":
					pm.mesh = append(pm.mesh, d.Value)
				case knownTop[name]:
					st, ok := d.Value.(*ast.StructLit)
					if !ok {
						return nil, false
					}
					for _, el := range st.Elts {
						ef, ok := el.(*ast.Field)
						if !ok {
							if _, c := el.(*ast.CommentGroup); c {
								continue
							}
							return nil, false
						}
						en, ok := plainLabelName(ef)
						if !ok {
							return nil, false
						}
						key := [2]string{name, en}
						pe := byKey[key]
						if pe == nil {
							pe = &plainEntity{kind: name, name: en}
							byKey[key] = pe
							pm.entities = append(pm.entities, pe)
						}
						pe.exprs = append(pe.exprs, ef.Value)
					}
				default:
					pm.unknown = append(pm.unknown, plainLabel{name: name, pos: d.Label.Pos()})
				}
			default:
				return nil, false
			}
		}
	}
	kindOrder := map[string]int{}
	for i, k := range entityKinds {
		kindOrder[k] = i
	}
	sort.Slice(pm.entities, func(i, j int) bool {
		a, b := pm.entities[i], pm.entities[j]
		if a.kind != b.kind {
			return kindOrder[a.kind] < kindOrder[b.kind]
		}
		return a.name < b.name
	})
	return pm, true
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

// workers overrides the number of plain-path workers (0: GOMAXPROCS, at
// most 4, since CUE's runtimes share a label index behind a lock).
var workers = 0

// renewEvery is how many entities a worker checks in one CUE runtime; see
// evaluator.renew.
var renewEvery = 128

// checkPlain checks a split repository on several workers, each with its
// own CUE runtime, and merges their results in a fixed order.
func checkPlain(pm *plainMesh, stop *atomic.Bool, sources *model.Sources, keepJSON bool, onEntity func(string)) (*decoder, model.Diagnostics, error) {
	n := workers
	if n <= 0 {
		n = min(runtime.GOMAXPROCS(0), 4)
	}
	n = max(1, min(n, len(pm.entities)))
	type result struct {
		dec   *decoder
		diags model.Diagnostics
		err   error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			defer func() {
				// A panic cannot cross goroutines: catch it here.
				if p := recover(); p != nil {
					r.err = fmt.Errorf("check mesh (worker %d): cue panicked: %v\n%s", w, p, debug.Stack())
				}
			}()
			e, err := newEvaluator(stop, sources)
			if err != nil {
				r.err = err
				return
			}
			e.onEntity = onEntity
			r.dec = newDecoder(keepJSON)
			if w == 0 {
				for _, u := range pm.unknown {
					e.add(CodeSchema, model.Path(u.name), "field not allowed", []token.Pos{u.pos})
				}
				e.checkPlainMesh(pm.mesh, r.dec)
			}
			done := 0
			for i := w; i < len(pm.entities); i += n {
				if stop.Load() {
					break
				}
				if done++; done%renewEvery == 0 {
					if r.err = e.renew(); r.err != nil {
						return
					}
				}
				pe := pm.entities[i]
				e.checkPlainEntity(pe, r.dec)
				// Drop the syntax: at 10,000 services the ASTs were most
				// of the live heap, and GC time grows with it.
				pe.exprs = nil
			}
			r.diags, r.err = e.diags, e.err
		}()
	}
	wg.Wait()
	merged := newDecoder(keepJSON)
	var diags model.Diagnostics
	for _, r := range results {
		if r.err != nil {
			return nil, nil, r.err
		}
		merged.merge(r.dec)
		diags = append(diags, r.diags...)
	}
	return merged, diags, nil
}

// checkPlainEntity compiles the entity's syntax together with the
// schema as one expression, #Mesh & {KIND: NAME: DATA}, so CUE evaluates
// the entity once; building the data first and unifying it with the
// schema afterwards evaluated it twice (measured: 40% more allocation).
func (e *evaluator) checkPlainEntity(pe *plainEntity, dec *decoder) {
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
	if e.validate(v) {
		dec.entity(pe.kind, pe.name, v, e)
	}
}

// checkPlainMesh checks the mesh block, which may be written nowhere.
func (e *evaluator) checkPlainMesh(exprs []ast.Expr, dec *decoder) {
	if len(exprs) == 0 {
		e.checkMeshBlock(cue.Value{}, dec)
		return
	}
	f := &ast.File{Filename: "$mesh", Decls: []ast.Decl{&ast.EmbedDecl{Expr: unifyAll(exprs)}}}
	e.checkMeshBlock(e.ctx.BuildFile(f), dec)
}

// unifyAll joins expressions with &.
func unifyAll(exprs []ast.Expr) ast.Expr {
	x := exprs[0]
	for _, y := range exprs[1:] {
		x = &ast.BinaryExpr{X: x, Op: token.AND, Y: y}
	}
	return x
}
