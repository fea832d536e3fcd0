package schema

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Guardrails unify their check with the whole mesh, which at 10,000
// services cost about 3 s of CPU on every load (measured), fifteen times
// the rest of an incremental load. Most checks are entity-local: they
// constrain each service, gateway … on its own (`services: [string]:
// versions: [string]: labels: owner!: string`). For those, unifying the
// check with one entity at a time gives the same findings, so a Cache keeps
// each entity's findings and re-runs guardrails only on changed entities.
// Anything the syntax test below cannot prove local runs over the whole
// mesh as before.

// railsByEntity reports whether every guardrail file is written so that
// checks can be evaluated one entity at a time: no references of any kind
// (only the predeclared types), no comprehensions, lets, definitions or
// embeddings, and each check only a `mesh` block and, per entity kind,
// pattern constraints (`services: [string]: …`). Without references a
// constraint on services.a can only ever see services.a's data.
func railsByEntity(files []repoFile) bool {
	for _, f := range files {
		af, ds := parseData(f, "guardrails")
		if af == nil || len(ds) > 0 || !refFree(af, nil) {
			return false
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.Package, *ast.CommentGroup, *ast.Attribute:
			case *ast.Field:
				if name, ok := plainLabelName(d); !ok || name != "guardrails" || !eachField(d.Value, func(g *ast.Field) bool {
					return eachField(g.Value, func(f *ast.Field) bool {
						name, _ := plainLabelName(f)
						return name != "check" || checkByEntity(f.Value)
					})
				}) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// eachField calls fn on every field of a struct literal with a plain
// label; false when x is something else or fn says no.
func eachField(x ast.Expr, fn func(*ast.Field) bool) bool {
	st, ok := x.(*ast.StructLit)
	if !ok {
		return false
	}
	for _, el := range st.Elts {
		switch el := el.(type) {
		case *ast.CommentGroup, *ast.Attribute:
		case *ast.Field:
			if _, ok := plainLabelName(el); !ok || !fn(el) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// checkByEntity reports whether a check holds only a mesh block and
// pattern constraints under entity kinds.
func checkByEntity(x ast.Expr) bool {
	return eachField(x, func(f *ast.Field) bool {
		name, _ := plainLabelName(f)
		if name == "mesh" {
			return true
		}
		if !knownTop[name] {
			return false
		}
		st, ok := f.Value.(*ast.StructLit)
		if !ok {
			return false
		}
		for _, el := range st.Elts {
			switch el := el.(type) {
			case *ast.CommentGroup:
			case *ast.Field:
				if _, ok := el.Label.(*ast.ListLit); !ok || el.Constraint != 0 {
					return false
				}
			default:
				return false
			}
		}
		return true
	})
}

// predeclared are the identifiers a guardrail may use: types, not data.
var predeclared = map[string]bool{"string": true, "int": true, "number": true, "bool": true,
	"bytes": true, "float": true, "uint": true, "null": true, "_": true}

// refFree reports whether n refers to nothing but predeclared types.
// scope holds the labels of the enclosing structs: a field named like a
// type (ports have a "number") shadows the type inside its struct.
func refFree(n ast.Node, scope map[string]bool) bool {
	switch n := n.(type) {
	case *ast.File:
		return declsRefFree(n.Decls, scope)
	case *ast.Package, *ast.CommentGroup, *ast.Attribute, *ast.BasicLit, *ast.BottomLit:
	case *ast.Field:
		switch l := n.Label.(type) {
		case *ast.Ident, *ast.BasicLit:
			if _, ok := labelName(l); !ok {
				return false
			}
		case *ast.ListLit:
			if !refFree(l, scope) {
				return false
			}
		default:
			return false
		}
		return refFree(n.Value, scope)
	case *ast.StructLit:
		return declsRefFree(n.Elts, scope)
	case *ast.ListLit:
		for _, e := range n.Elts {
			if !refFree(e, scope) {
				return false
			}
		}
	case *ast.Ellipsis:
		return n.Type == nil || refFree(n.Type, scope)
	case *ast.Ident:
		return predeclared[n.Name] && !scope[n.Name]
	case *ast.UnaryExpr:
		return refFree(n.X, scope)
	case *ast.BinaryExpr:
		return refFree(n.X, scope) && refFree(n.Y, scope)
	case *ast.ParenExpr:
		return refFree(n.X, scope)
	default:
		return false
	}
	return true
}

// declsRefFree checks the declarations of one struct (or file) with its
// labels added to the scope.
func declsRefFree(decls []ast.Decl, scope map[string]bool) bool {
	inner := scope
	for _, d := range decls {
		f, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if name, ok := labelName(f.Label); ok && predeclared[name] && !inner[name] {
			inner = maps.Clone(inner)
			if inner == nil {
				inner = map[string]bool{}
			}
			inner[name] = true
		}
	}
	for _, d := range decls {
		if !refFree(d, inner) {
			return false
		}
	}
	return true
}

// railsKey identifies the guardrail files and the schema behind cached
// guardrail findings.
func railsKey(files []repoFile) [32]byte {
	h := sha256.New()
	sh := schemaHash()
	h.Write(sh[:])
	for _, f := range files {
		h.Write([]byte(f.path))
		h.Write([]byte{0})
		h.Write(f.src)
		h.Write([]byte{0})
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// railFinding is a guardrail finding with the index of its guardrail in
// name order, to put findings back in the order a whole-mesh run gives.
type railFinding struct {
	rail int
	diag model.Diagnostic
}

// railItem is one decoded entity whose guardrail findings are wanted.
type railItem struct {
	kind, name string
	json       []byte
	key        [32]byte // entity key; zero when not cacheable
}

// checkRailsByEntity runs guardrails on the mesh block and on each item on
// its own, reusing findings from gen for unchanged entities and adding
// every item's findings to next. The result equals checkGuardrails'; the
// count is of the items guardrails ran on.
func (e *evaluator) checkRailsByEntity(files []repoFile, dec *decoder, items []railItem, gen, next *generation) (model.Diagnostics, int) {
	rails, diags := e.parseGuardrails(files)
	if len(rails) == 0 {
		return diags, 0
	}
	rk := railsKey(files)
	run := func(doc map[string]any, prefix string) []railFinding {
		b, err := json.Marshal(doc)
		if err != nil {
			e.internal(fmt.Errorf("export %s for guardrails: %w", prefix, err))
			return nil
		}
		data := e.ctx.CompileBytes(b, cue.Filename("$mesh.json"))
		if err := data.Err(); err != nil {
			e.internal(fmt.Errorf("export %s for guardrails: %w", prefix, err))
			return nil
		}
		var out []railFinding
		for i, g := range rails {
			for _, d := range e.railDiags(g, data, prefix) {
				out = append(out, railFinding{rail: i, diag: d})
			}
		}
		return out
	}
	keys := make([][32]byte, len(items))
	misses := 0
	for i, it := range items {
		if it.key == ([32]byte{}) {
			misses++
			continue
		}
		h := sha256.New()
		h.Write(it.key[:])
		h.Write(rk[:])
		h.Sum(keys[i][:0])
		if _, ok := gen.rails[keys[i]]; !ok {
			misses++
		}
	}
	if misses > len(items)/4 {
		// One run over the whole mesh costs a third of running entity by
		// entity (measured: 3 vs 11 s of CPU at 10,000 services), and the
		// findings split by entity path all the same.
		return e.railsWhole(rails, diags, dec, items, keys, next), len(items)
	}
	doc := map[string]any{}
	if dec.meshJSON != nil {
		doc["mesh"] = dec.meshJSON
	}
	e.onEntity("policies.guardrails")
	found := run(doc, "")
	checked := 0
	for i, it := range items {
		if e.stop.Load() || e.err != nil {
			break
		}
		key := keys[i]
		if hit, ok := gen.rails[key]; ok && key != ([32]byte{}) {
			next.rails[key] = hit
			found = append(found, hit...)
			continue
		}
		checked++
		e.onEntity("policies.guardrails." + it.kind + "." + it.name)
		fs := run(map[string]any{it.kind: map[string]json.RawMessage{it.name: it.json}}, model.Path(it.kind, it.name))
		if key != ([32]byte{}) && e.err == nil && !e.stop.Load() {
			next.rails[key] = fs
		}
		found = append(found, fs...)
	}
	return appendFindings(diags, found), checked
}

// appendFindings sorts findings as checkGuardrails orders them (by
// guardrail name, then path) and appends them to diags.
func appendFindings(diags model.Diagnostics, found []railFinding) model.Diagnostics {
	sort.SliceStable(found, func(i, j int) bool {
		if found[i].rail != found[j].rail {
			return found[i].rail < found[j].rail
		}
		return found[i].diag.Path < found[j].diag.Path
	})
	for _, f := range found {
		diags = append(diags, f.diag)
	}
	return diags
}

// railsWhole runs the guardrails over the whole mesh and files each
// finding under the entity its path is in, for the next load.
func (e *evaluator) railsWhole(rails []guardrail, diags model.Diagnostics, dec *decoder, items []railItem, keys [][32]byte, next *generation) model.Diagnostics {
	data, err := e.exportedMesh(dec)
	if err != nil {
		e.internal(err)
		return diags
	}
	byPrefix := make(map[string]int, len(items))
	for i, it := range items {
		byPrefix[model.Path(it.kind, it.name)] = i
	}
	perItem := make([][]railFinding, len(items))
	var found []railFinding
	for i, g := range rails {
		if e.stop.Load() {
			return diags
		}
		e.onEntity("policies.guardrails." + g.name)
		for _, d := range e.railDiags(g, data, "") {
			f := railFinding{rail: i, diag: d}
			found = append(found, f)
			if k, ok := byPrefix[entityPrefix(d.Path)]; ok {
				perItem[k] = append(perItem[k], f)
			}
		}
	}
	for i := range items {
		if keys[i] != ([32]byte{}) {
			next.rails[keys[i]] = perItem[i]
		}
	}
	return appendFindings(diags, found)
}

// entityPrefix is the KIND.NAME part of a path ("" if it has none), NAME
// quoted as model.Path quotes it.
func entityPrefix(path string) string {
	kind, rest, ok := strings.Cut(path, ".")
	if !ok || rest == "" {
		return ""
	}
	name := rest
	if rest[0] == '"' {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return ""
		}
		name = q
	} else if i := strings.IndexAny(rest, ".["); i >= 0 {
		name = rest[:i]
	}
	return kind + "." + name
}
