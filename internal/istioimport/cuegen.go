package istioimport

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/token"
)

// These helpers build CUE syntax trees; cue/format prints them, so
// quoting and layout are CUE's own (gofmt-like), never hand-made.

// label is an identifier when CUE allows one there, else a quoted
// string ("bookinfo-gateway", "end-user").
func label(name string) ast.Label {
	if ast.IsValidIdent(name) && !strings.HasPrefix(name, "_") && !strings.HasPrefix(name, "#") {
		return ast.NewIdent(name)
	}
	return ast.NewString(name)
}

// fld is one field; a nil value means "leave the field out".
type fld struct {
	name string
	val  ast.Expr
}

func f(name string, v ast.Expr) fld { return fld{name, v} }

func decls(fs []fld) []ast.Decl {
	var out []ast.Decl
	for _, x := range fs {
		if x.val == nil {
			continue
		}
		out = append(out, &ast.Field{Label: label(x.name), Value: x.val})
	}
	return out
}

// block is a struct with one field per line; a struct of one field is
// written CUE's short way (a: b: c).
func block(fs ...fld) ast.Expr {
	ds := decls(fs)
	if len(ds) == 0 {
		return nil
	}
	return &ast.StructLit{Elts: ds}
}

// inline is a struct on one line: {name: "http", number: 9080}.
func inline(fs ...fld) ast.Expr {
	ds := decls(fs)
	if len(ds) == 0 {
		return nil
	}
	for i, d := range ds {
		if i == 0 {
			ast.SetRelPos(d, token.NoSpace)
		} else {
			ast.SetRelPos(d, token.Blank)
		}
	}
	return &ast.StructLit{Lbrace: token.Blank.Pos(), Elts: ds, Rbrace: token.NoSpace.Pos()}
}

// list is a list on one line when it has one element (or only scalars),
// else one element per line.
func list(elts ...ast.Expr) ast.Expr {
	if len(elts) == 0 {
		return nil
	}
	for i, e := range elts {
		if e == nil {
			// An element whose fields are all defaults: {}.
			elts[i] = &ast.StructLit{}
		}
	}
	l := ast.NewList(elts...)
	scalars := true
	for _, e := range elts {
		if _, ok := e.(*ast.BasicLit); !ok {
			scalars = false
		}
	}
	if len(elts) == 1 || scalars {
		for i, e := range elts {
			if i > 0 {
				ast.SetRelPos(e, token.Blank)
			}
		}
		return l
	}
	for _, e := range elts {
		if s, ok := e.(*ast.StructLit); ok && !s.Lbrace.IsValid() {
			// A block struct: braces of its own, on lines of their own.
			s.Lbrace, s.Rbrace = token.Newline.Pos(), token.Newline.Pos()
			continue
		}
		ast.SetRelPos(e, token.Newline)
	}
	l.Rbrack = token.Newline.Pos()
	return l
}

func str(s string) ast.Expr {
	return ast.NewString(s)
}

// optStr is str, or nothing for "".
func optStr(s string) ast.Expr {
	if s == "" {
		return nil
	}
	return str(s)
}

func num(n int) ast.Expr { return ast.NewLit(token.INT, strconv.Itoa(n)) }

// optNum is num, or nothing for 0.
func optNum(n int) ast.Expr {
	if n == 0 {
		return nil
	}
	return num(n)
}

func float(v float64) ast.Expr {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if strings.ContainsAny(s, ".e") {
		return ast.NewLit(token.FLOAT, s)
	}
	return ast.NewLit(token.INT, s)
}

func boolean(b bool) ast.Expr { return ast.NewBool(b) }

func strs(ss []string) ast.Expr {
	var es []ast.Expr
	for _, s := range ss {
		es = append(es, str(s))
	}
	return list(es...)
}

// strMap is a map of strings on one line, keys sorted.
func strMap(m map[string]string) ast.Expr {
	var fs []fld
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fs = append(fs, f(k, str(m[k])))
	}
	return inline(fs...)
}

// file formats a CUE file of package mesh with a doc comment and the
// given top-level fields.
func file(doc []string, fs ...fld) []byte {
	pkg := &ast.Package{Name: ast.NewIdent("mesh")}
	if len(doc) > 0 {
		cg := &ast.CommentGroup{Doc: true}
		for _, l := range doc {
			cg.List = append(cg.List, &ast.Comment{Text: strings.TrimRight("// "+l, " ")})
		}
		ast.AddComment(pkg, cg)
	}
	d := append([]ast.Decl{pkg}, decls(fs)...)
	for _, x := range d[1:] {
		ast.SetRelPos(x, token.NewSection)
	}
	b, err := format.Node(&ast.File{Decls: d}, format.Simplify())
	if err != nil {
		// The trees are built here from known node types; a failure is a
		// bug in this package, not in the input.
		panic("istioimport: format: " + err.Error())
	}
	return b
}
