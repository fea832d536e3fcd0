package schema

import (
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"

	"github.com/gitmesh/gitmesh/schema/model"
)

// recordSources walks the syntax of data files and records the position of
// every field path written literally, the position being the field's label
// (or a list element's start). Walking syntax instead of the evaluated value
// costs no CUE evaluation and records exactly what the user wrote; fields
// produced by comprehensions or templates are not recorded, so lookups for
// them fall back to the nearest written parent.
func recordSources(src *model.Sources, files []*ast.File) {
	for _, f := range files {
		w := sourceWalker{set: src.Set, file: f.Filename}
		w.decls("", f.Decls)
	}
}

// srcEntry is one position recordSources would set.
type srcEntry struct {
	path string
	pos  model.Pos
}

// sourceEntries lists, in order, the positions recordSources records for
// one file, so a Cache can replay an unchanged file without its syntax.
func sourceEntries(f *ast.File) []srcEntry {
	var out []srcEntry
	w := sourceWalker{file: f.Filename, set: func(path string, p model.Pos) {
		out = append(out, srcEntry{path: path, pos: p})
	}}
	w.decls("", f.Decls)
	return out
}

type sourceWalker struct {
	set  func(path string, p model.Pos)
	file string
}

func (w *sourceWalker) decls(prefix string, decls []ast.Decl) {
	for _, d := range decls {
		switch d := d.(type) {
		case *ast.Field:
			name, ok := labelName(d.Label)
			if !ok {
				continue
			}
			p := joinPath(prefix, name)
			w.set(p, toPos(d.Label.Pos(), w.file))
			w.expr(p, d.Value)
		case *ast.EmbedDecl:
			w.expr(prefix, d.Expr)
		}
	}
}

func (w *sourceWalker) expr(p string, x ast.Expr) {
	switch x := x.(type) {
	case *ast.StructLit:
		w.decls(p, x.Elts)
	case *ast.ListLit:
		for i, e := range x.Elts {
			if _, ok := e.(*ast.Ellipsis); ok {
				return
			}
			ip := model.Index(p, i)
			w.set(ip, toPos(e.Pos(), w.file))
			w.expr(ip, e)
		}
	case *ast.BinaryExpr:
		// Only unification keeps both sides' fields; in a disjunction
		// neither side is certain to be the one that was taken.
		if x.Op.String() == "&" {
			w.expr(p, x.X)
			w.expr(p, x.Y)
		}
	case *ast.ParenExpr:
		w.expr(p, x.X)
	}
}

// labelName returns the name of a regular field's label; hidden fields,
// definitions, pattern constraints and computed labels have none.
func labelName(l ast.Label) (string, bool) {
	if a, ok := l.(*ast.Alias); ok {
		if e, ok := a.Expr.(ast.Label); ok {
			l = e
		} else {
			return "", false
		}
	}
	switch l := l.(type) {
	case *ast.Ident:
		if strings.HasPrefix(l.Name, "_") || strings.HasPrefix(l.Name, "#") {
			return "", false
		}
		return l.Name, true
	case *ast.BasicLit:
		s, err := strconv.Unquote(l.Value)
		if err != nil {
			// CUE strings allow more than Go's; fall back to the library.
			name, _, err := ast.LabelName(l)
			return name, err == nil
		}
		return s, true
	}
	return "", false
}

// joinPath appends one label to a path, quoting it as model.Path does.
func joinPath(prefix, name string) string { return model.Join(prefix, name) }

// cuePath converts the path of a CUE error (selectors such as "services",
// "\"my-svc\"", "0") to the model's notation, dropping the definitions the
// loader unified with, and the schema's hidden helper fields, so paths read
// as the user's data.
func cuePath(sels []string) string {
	var b strings.Builder
	for _, s := range sels {
		if s == "" || strings.HasPrefix(s, "#") || strings.HasPrefix(s, "_") {
			continue
		}
		if isIndex(s) {
			b.WriteString("[" + s + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func isIndex(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
