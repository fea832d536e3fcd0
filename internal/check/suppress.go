package check

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gitmesh/gitmesh/schema/model"
)

// SuppressionsFile is where a mesh repository lists the findings it accepts,
// relative to the mesh directory. A file (not CUE comments) because findings
// are positioned by the loader and policies at fields that need not be on
// the line after a comment, because YAML and JSON data files have no
// comments, and because one reviewable file shows every accepted risk. The
// loader skips dot-directories, so it is never read as mesh data.
const SuppressionsFile = ".gitmesh/suppressions.yaml"

// maxSuppressionsSize bounds the file; a pull request is untrusted.
const maxSuppressionsSize = 256 << 10

// Codes of findings about suppressions. GM09xx is not used by schema,
// policies or render.
const (
	// CodeSuppressionNoReason: a suppression without a reason suppresses
	// nothing and is itself an error.
	CodeSuppressionNoReason = "GM0901"
	// CodeSuppressionInvalid: the file does not parse, or an entry has an
	// unknown field or no code.
	CodeSuppressionInvalid = "GM0902"
	// CodeSuppressionUnused: an entry matches no finding (stale).
	CodeSuppressionUnused = "GM0903"
)

// Suppression accepts the findings with Code whose field path is Path (or
// below it) and whose file is File, when those are set.
type Suppression struct {
	Code   string
	Path   string
	File   string
	Reason string
	// Pos is where the entry is written, for findings about it.
	Pos model.Pos
}

// Matches reports whether the suppression covers d. Path matches at element
// boundaries: "services.reviews.routes[1]" covers
// "services.reviews.routes[1].to" but not "services.reviews.routes[10]".
func (s Suppression) Matches(d model.Diagnostic) bool {
	if s.Code != d.Code || s.Reason == "" {
		return false
	}
	if s.File != "" && s.File != d.Pos.File {
		return false
	}
	if s.Path == "" || s.Path == d.Path {
		return true
	}
	if !strings.HasPrefix(d.Path, s.Path) {
		return false
	}
	next := d.Path[len(s.Path)]
	return next == '.' || next == '['
}

// readSuppressions reads SuppressionsFile from the mesh directory; a missing
// file is no suppressions. Problems become findings positioned in the file.
func readSuppressions(fsys fs.FS) ([]Suppression, model.Diagnostics) {
	f, err := fsys.Open(SuppressionsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	bad := func(line, col int, format string, a ...any) model.Diagnostic {
		return model.Diagnostic{Code: CodeSuppressionInvalid, Severity: model.SeverityError,
			Pos: model.Pos{File: SuppressionsFile, Line: line, Col: col}, Message: fmt.Sprintf(format, a...)}
	}
	if err != nil {
		return nil, model.Diagnostics{bad(0, 0, "cannot read suppressions: %v", stripPath(err))}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSuppressionsSize+1))
	if err != nil {
		return nil, model.Diagnostics{bad(0, 0, "cannot read suppressions: %v", stripPath(err))}
	}
	if len(data) > maxSuppressionsSize {
		return nil, model.Diagnostics{bad(0, 0, "file is over %d bytes", maxSuppressionsSize)}
	}
	return parseSuppressions(data, bad)
}

// parseSuppressions walks the YAML nodes itself, so every entry keeps its
// line and unknown fields are reported instead of silently ignored.
func parseSuppressions(data []byte, bad func(int, int, string, ...any) model.Diagnostic) ([]Suppression, model.Diagnostics) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, model.Diagnostics{bad(1, 1, "%s", strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, model.Diagnostics{bad(top.Line, top.Column, "want a mapping with a \"suppressions\" list")}
	}
	var (
		out   []Suppression
		diags model.Diagnostics
	)
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Value != "suppressions" {
			diags = append(diags, bad(k.Line, k.Column, "unknown field %q (want \"suppressions\")", k.Value))
			continue
		}
		if v.Kind != yaml.SequenceNode {
			if v.Tag != "!!null" {
				diags = append(diags, bad(v.Line, v.Column, "suppressions: want a list"))
			}
			continue
		}
		for _, e := range v.Content {
			s, ds := parseEntry(e, bad)
			diags = append(diags, ds...)
			if s != nil {
				out = append(out, *s)
			}
		}
	}
	return out, diags
}

func parseEntry(e *yaml.Node, bad func(int, int, string, ...any) model.Diagnostic) (*Suppression, model.Diagnostics) {
	if e.Kind != yaml.MappingNode {
		return nil, model.Diagnostics{bad(e.Line, e.Column, "a suppression must be a mapping with code and reason")}
	}
	s := &Suppression{Pos: model.Pos{File: SuppressionsFile, Line: e.Line, Col: e.Column}}
	var diags model.Diagnostics
	for i := 0; i+1 < len(e.Content); i += 2 {
		k, v := e.Content[i], e.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			diags = append(diags, bad(v.Line, v.Column, "%s: want a string", k.Value))
			continue
		}
		switch k.Value {
		case "code":
			s.Code = strings.TrimSpace(v.Value)
		case "path":
			s.Path = strings.TrimSpace(v.Value)
		case "file":
			s.File = strings.TrimPrefix(strings.TrimSpace(v.Value), "./")
		case "reason":
			s.Reason = strings.TrimSpace(v.Value)
		default:
			diags = append(diags, bad(k.Line, k.Column, "unknown field %q (want code, path, file or reason)", k.Value))
		}
	}
	if s.Code == "" {
		return nil, append(diags, bad(e.Line, e.Column, "a suppression needs a code"))
	}
	if s.Reason == "" {
		diags = append(diags, model.Diagnostic{Code: CodeSuppressionNoReason, Severity: model.SeverityError,
			Pos: s.Pos, Message: fmt.Sprintf("suppression of %s has no reason; say why the finding is accepted", s.Code)})
	}
	return s, diags
}

// stripPath keeps temp-dir or host paths out of messages.
func stripPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
