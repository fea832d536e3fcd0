package schema

import (
	"crypto/sha256"
	"encoding/binary"
	"io/fs"
	"sort"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// A Cache reuses an entity's result only while everything that determines
// it is the same. For a plain entity that is: the embedded schema, the
// entity's kind and name, and the syntax of every part of it in file order
// — each node's kind, literal text and position (file, line, column),
// since diagnostics and Sources carry positions. Nothing else goes in: an
// entity is checked against #Mesh alone (not the user's mesh block) and its
// diagnostics are positioned from its own Sources entries, so a change
// elsewhere cannot change its result.

// fingerprint hashes one part of a plain file: its label and value with
// every position. It returns the zero hash, which the cache never reuses,
// for syntax it does not know: correctness beats hit rate.
func fingerprint(file, kind string, label ast.Label, value ast.Expr) [32]byte {
	w := fpWriter{file: file, buf: make([]byte, 0, 1024)}
	w.str(file)
	w.str(kind)
	if !w.label(label) || !w.expr(value) {
		return [32]byte{}
	}
	return sha256.Sum256(w.buf)
}

// fpWriter writes the canonical form of plain syntax. Comments are left
// out: they change neither values nor the positions of other nodes.
type fpWriter struct {
	file string
	buf  []byte
}

func (w *fpWriter) str(s string) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *fpWriter) pos(p token.Pos) {
	w.buf = binary.AppendVarint(w.buf, int64(p.Line()))
	w.buf = binary.AppendVarint(w.buf, int64(p.Column()))
	// Nodes of one file carry its name; write any other name in full.
	if p.IsValid() && p.Filename() != w.file {
		w.buf = append(w.buf, 'f')
		w.str(p.Filename())
	}
}

func (w *fpWriter) label(l ast.Label) bool {
	switch l := l.(type) {
	case *ast.Ident:
		w.buf = append(w.buf, 'I')
		w.pos(l.NamePos)
		w.str(l.Name)
	case *ast.BasicLit:
		w.buf = append(w.buf, 'B')
		w.pos(l.ValuePos)
		w.buf = binary.AppendUvarint(w.buf, uint64(l.Kind))
		w.str(l.Value)
	default:
		return false
	}
	return true
}

// expr writes x; false for anything but plain data (see isPlain).
func (w *fpWriter) expr(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.BasicLit:
		w.buf = append(w.buf, 'B')
		w.pos(x.ValuePos)
		w.buf = binary.AppendUvarint(w.buf, uint64(x.Kind))
		w.str(x.Value)
	case *ast.UnaryExpr:
		w.buf = append(w.buf, 'U')
		w.pos(x.OpPos)
		w.buf = binary.AppendUvarint(w.buf, uint64(x.Op))
		return w.expr(x.X)
	case *ast.ListLit:
		w.buf = append(w.buf, 'L')
		w.pos(x.Lbrack)
		w.pos(x.Rbrack)
		w.buf = binary.AppendUvarint(w.buf, uint64(len(x.Elts)))
		for _, e := range x.Elts {
			if !w.expr(e) {
				return false
			}
		}
	case *ast.StructLit:
		w.buf = append(w.buf, 'S')
		w.pos(x.Lbrace)
		w.pos(x.Rbrace)
		for _, d := range x.Elts {
			if !w.decl(d) {
				return false
			}
		}
		w.buf = append(w.buf, 's')
	default:
		return false
	}
	return true
}

func (w *fpWriter) decl(d ast.Decl) bool {
	switch d := d.(type) {
	case *ast.Field:
		w.buf = append(w.buf, 'F')
		if !w.label(d.Label) {
			return false
		}
		w.buf = binary.AppendUvarint(w.buf, uint64(d.Constraint))
		for _, a := range d.Attrs {
			w.attr(a)
		}
		return w.expr(d.Value)
	case *ast.Attribute:
		w.attr(d)
	case *ast.CommentGroup:
	default:
		return false
	}
	return true
}

func (w *fpWriter) attr(a *ast.Attribute) {
	w.buf = append(w.buf, 'A')
	w.pos(a.At)
	w.str(a.Text)
}

var (
	schemaHashOnce sync.Once
	schemaHashSum  [32]byte
)

// schemaHash identifies the embedded schema, so a cache could never
// serve results checked against another schema.
func schemaHash() [32]byte {
	schemaHashOnce.Do(func() {
		h := sha256.New()
		names, _ := fs.Glob(schemaFiles, "*.cue")
		sort.Strings(names)
		for _, n := range names {
			b, _ := schemaFiles.ReadFile(n)
			h.Write([]byte(n))
			h.Write([]byte{0})
			h.Write(b)
			h.Write([]byte{0})
		}
		h.Sum(schemaHashSum[:0])
	})
	return schemaHashSum
}
