package schema

import (
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"

	"github.com/gitmesh/gitmesh/schema/model"
)

// maxLocateDecls bounds locate's work per file: it builds a file once per
// top-level declaration, so a file with more is located as a whole.
const maxLocateDecls = 64

// locate finds where evaluation blows up when a load died before its first
// entity. That is where a bomb in a hidden field (`_s: strings.Repeat(…)`)
// kills it: CUE evaluates the whole package when it builds it, so the
// progress says nothing finer than "building". locate runs in a fresh
// worker and builds each data file on its own, first with its first
// top-level declaration, then its first two, and so on, reporting each
// declaration before building with it: the worker dies again at the
// culprit, and the parent reads the last report. pkg is the files'
// package: "mesh" for data files, "guardrails" for policies/. Declarations that refer to
// later ones, or to other files, fail to resolve here, which is cheap.
func locate(files []repoFile, pkg string, report func(at string, pos model.Pos)) {
	for _, f := range files {
		report("", model.Pos{File: f.path})
		syntax, diags := parseData(f, pkg)
		if syntax == nil || diags.HasErrors() {
			continue
		}
		_, body := splitDecls(syntax.Decls)
		if len(body) > maxLocateDecls {
			buildAlone(syntax, pkg)
			continue
		}
		for i := range body {
			at := ""
			if fd, ok := body[i].(*ast.Field); ok {
				at, _, _ = ast.LabelName(fd.Label)
			}
			report(at, toPos(body[i].Pos(), f.path))
			// Building consumes syntax, so each prefix is parsed again.
			again, _ := parseData(f, pkg)
			h, b := splitDecls(again.Decls)
			again.Decls = append(h, b[:i+1]...)
			buildAlone(again, pkg)
		}
	}
}

// splitDecls separates a file's package clause and imports from the rest.
func splitDecls(decls []ast.Decl) (head, body []ast.Decl) {
	for _, d := range decls {
		switch d.(type) {
		case *ast.Package, *ast.ImportDecl, *ast.Attribute, *ast.CommentGroup:
			head = append(head, d)
		default:
			body = append(body, d)
		}
	}
	return head, body
}

// buildAlone evaluates one file, a data file with the schema in scope as
// evalData builds it, a guardrail file on its own.
func buildAlone(f *ast.File, pkg string) {
	files := []*ast.File{f}
	if pkg == "mesh" {
		schemaAST, err := parseSchema()
		if err != nil {
			return
		}
		files = append(files, schemaAST...)
	}
	v, err := buildFiles(cuecontext.New(), pkg, files)
	if err == nil {
		_ = v.Err()
	}
}
