package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

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
			return nil, syntaxDiags(f.path, f.src, err)
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
			return nil, syntaxDiags(f.path, f.src, err)
		}
		if !isStructFile(file) {
			return nil, model.Diagnostics{notObject(f.path)}
		}
		unwrapYAMLNumbers(file)
		return withPackage(file, pkg), nil
	default: // .json
		expr, err := cuejson.Extract(f.path, f.src)
		if err != nil {
			return nil, syntaxDiags(f.path, f.src, err)
		}
		st, ok := expr.(*ast.StructLit)
		if !ok {
			return nil, model.Diagnostics{notObject(f.path)}
		}
		return withPackage(&ast.File{Filename: f.path, Decls: st.Elts}, pkg), nil
	}
}

// unwrapYAMLNumbers undoes a quirk of CUE's YAML decoder (v0.17): an
// integer too large for int64, which YAML resolves as a float, becomes a
// literal whose text is "number & 99999999999999999999999", which CUE then
// fails to read ("illegal number start"), far from the user's value. The
// literal becomes the plain number again, so the schema's bound reports it
// at its position.
func unwrapYAMLNumbers(f *ast.File) {
	ast.Walk(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.FLOAT {
			if v, ok := strings.CutPrefix(lit.Value, "number & "); ok {
				lit.Value, lit.Kind = v, token.INT
			}
		}
		return true
	}, nil)
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

// syntaxDiags turns parser errors into GM0001 diagnostics. src is the
// file's content, to place errors that carry only a line.
func syntaxDiags(file string, src []byte, err error) model.Diagnostics {
	var ds model.Diagnostics
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		d := model.Diagnostic{
			Code:     CodeSyntax,
			Severity: model.SeverityError,
			Pos:      toPos(e.Position(), file),
			Message:  fmt.Sprintf(format, args...),
		}
		// CUE's JSON decoder says only "invalid JSON for file …" and
		// keeps encoding/json's own error (which has the reason) inside.
		var se *json.SyntaxError
		if errors.As(e, &se) {
			d.Message = se.Error()
		}
		if d.Message == "" || !d.Pos.IsValid() || d.Pos.Line == 0 {
			// YAML syntax errors are plain strings "FILE:LINE: problem"
			// (or "FILE: problem") with neither position nor message
			// in the structured error.
			d.Pos, d.Message = yamlErrorPos(file, src, e.Error())
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		ds = append(ds, fileDiag(CodeSyntax, file, err.Error()))
	}
	return ds
}

// yamlParserProblems are the problems yaml.v3's parser (not its scanner)
// reports; their line numbers are 0-based, the scanner's 1-based (see
// parser.fail in go.yaml.in/yaml/v3).
var yamlParserProblems = []string{"did not find expected", "found duplicate", "found incompatible", "found undefined tag handle"}

// yamlErrorPos places a YAML syntax error given as "FILE:LINE: problem".
// yaml.v3 gives no column, so the column is the line's first non-blank
// character; an error without a line is at 1:1.
func yamlErrorPos(file string, src []byte, msg string) (model.Pos, string) {
	msg = strings.TrimPrefix(msg, file+":")
	line := 0
	if i := strings.IndexByte(msg, ':'); i > 0 {
		if n, err := strconv.Atoi(msg[:i]); err == nil {
			line, msg = n, msg[i+1:]
		}
	}
	msg = strings.TrimSpace(msg)
	for _, p := range yamlParserProblems {
		if strings.HasPrefix(msg, p) {
			line++
			break
		}
	}
	line = max(line, 1)
	lines := strings.Split(string(src), "\n")
	col := 1
	if line <= len(lines) {
		text := lines[line-1]
		indent := len(text) - len(strings.TrimLeft(text, " \t"))
		col = indent + 1
		if i := strings.IndexByte(text[:indent], '\t'); i >= 0 && strings.Contains(msg, "cannot start any token") {
			col = i + 1 // YAML forbids tabs in indentation
		}
	} else {
		line = max(len(lines), 1)
	}
	if msg == "" {
		msg = "invalid YAML"
	}
	return model.Pos{File: file, Line: line, Col: col}, msg
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
