package schema

import (
	"fmt"
	"path"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"
	cueyaml "cuelang.org/go/encoding/yaml"

	"github.com/gitmesh/gitmesh/schema/model"
)

// parseData parses one data file into CUE syntax of package pkg. YAML and
// JSON go through CUE's own decoders so that positions survive and integers
// stay integers. A file that cannot be parsed yields diagnostics and nil.
func parseData(f repoFile, pkg string) (*ast.File, model.Diagnostics) {
	switch path.Ext(f.path) {
	case ".cue":
		file, err := parser.ParseFile(f.path, f.src)
		if err != nil {
			return nil, syntaxDiags(f.path, err)
		}
		if name := file.PackageName(); name != pkg {
			pos := model.Pos{File: f.path, Line: 1, Col: 1}
			if pc := packageClause(file); pc != nil {
				pos = toPos(pc.Pos(), f.path)
			}
			msg := fmt.Sprintf("package %q, want %q", name, pkg)
			if name == "" {
				msg = fmt.Sprintf("missing package clause, want \"package %s\"", pkg)
			}
			return nil, model.Diagnostics{{Code: CodeSyntax, Severity: model.SeverityError, Pos: pos, Message: msg}}
		}
		return file, nil
	case ".yaml", ".yml":
		file, err := cueyaml.Extract(f.path, f.src)
		if err != nil {
			return nil, syntaxDiags(f.path, err)
		}
		if !isStructFile(file) {
			return nil, model.Diagnostics{notObject(f.path)}
		}
		return withPackage(file, pkg), nil
	default: // .json
		expr, err := cuejson.Extract(f.path, f.src)
		if err != nil {
			return nil, syntaxDiags(f.path, err)
		}
		st, ok := expr.(*ast.StructLit)
		if !ok {
			return nil, model.Diagnostics{notObject(f.path)}
		}
		return withPackage(&ast.File{Filename: f.path, Decls: st.Elts}, pkg), nil
	}
}

// isStructFile reports whether a decoded YAML file is a mapping (an empty
// file is fine too): a top-level list or scalar cannot be mesh data.
func isStructFile(f *ast.File) bool {
	for _, d := range f.Decls {
		switch d.(type) {
		case *ast.Field, *ast.CommentGroup, *ast.Attribute:
		default:
			return false
		}
	}
	return true
}

func notObject(file string) model.Diagnostic {
	return model.Diagnostic{Code: CodeSyntax, Severity: model.SeverityError,
		Pos: model.Pos{File: file, Line: 1, Col: 1}, Message: "top level must be an object"}
}

// withPackage puts data files into the mesh package so that they build
// together with the CUE files.
func withPackage(f *ast.File, pkg string) *ast.File {
	decls := make([]ast.Decl, 0, len(f.Decls)+1)
	decls = append(decls, &ast.Package{Name: ast.NewIdent(pkg)})
	f.Decls = append(decls, f.Decls...)
	return f
}

func packageClause(f *ast.File) *ast.Package {
	for _, d := range f.Decls {
		if p, ok := d.(*ast.Package); ok {
			return p
		}
	}
	return nil
}

// syntaxDiags turns parser errors into GM0001 diagnostics.
func syntaxDiags(file string, err error) model.Diagnostics {
	var ds model.Diagnostics
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		ds = append(ds, model.Diagnostic{
			Code:     CodeSyntax,
			Severity: model.SeverityError,
			Pos:      toPos(e.Position(), file),
			Message:  fmt.Sprintf(format, args...),
		})
	}
	if len(ds) == 0 {
		ds = append(ds, fileDiag(CodeSyntax, file, err.Error()))
	}
	return ds
}

// toPos converts a CUE position; fallback names the file when the position
// carries none.
func toPos(p token.Pos, fallback string) model.Pos {
	if !p.IsValid() {
		return model.Pos{File: fallback}
	}
	name := p.Filename()
	if name == "" {
		name = fallback
	}
	return model.Pos{File: name, Line: p.Line(), Col: p.Column()}
}
