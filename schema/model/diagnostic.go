package model

import (
	"fmt"
	"sort"
)

// Severity orders diagnostics: Error blocks a revision, Warning and Info do not.
type Severity int

// The severities, most severe first.
const (
	SeverityError Severity = iota
	SeverityWarning
	SeverityInfo
)

// String returns "error", "warning" or "info".
func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	default:
		return "info"
	}
}

// ParseSeverity is the inverse of String.
func ParseSeverity(s string) (Severity, error) {
	switch s {
	case "error":
		return SeverityError, nil
	case "warning":
		return SeverityWarning, nil
	case "info":
		return SeverityInfo, nil
	}
	return 0, fmt.Errorf("unknown severity %q (want error, warning or info)", s)
}

// MarshalText makes severities read as words in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a severity word.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Diagnostic is one finding about a mesh repository: a load error, a schema
// violation or a policy finding. Code is stable (GMnnnn) so CI can filter and
// suppress findings.
type Diagnostic struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Pos      Pos      `json:"pos"`
	// Path is the field path the finding is about, like
	// "services.reviews.routes[0].to[1].version"; "" for whole files.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Error formats the diagnostic as "file:line:col: path: message".
func (d Diagnostic) Error() string {
	s := d.Pos.String() + ": "
	if d.Path != "" {
		s += d.Path + ": "
	}
	return s + d.Message
}

// Diagnostics is a list of findings.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is at error severity.
func (ds Diagnostics) HasErrors() bool { return ds.Count(SeverityError) > 0 }

// Count returns how many diagnostics are at exactly severity s.
func (ds Diagnostics) Count(s Severity) int {
	n := 0
	for _, d := range ds {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// Sort orders diagnostics by file, line, column, code and message, so output
// is stable whatever order checks ran in.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Message < b.Message
	})
}

// Error makes Diagnostics usable as an error listing every finding.
func (ds Diagnostics) Error() string {
	s := ""
	for i, d := range ds {
		if i > 0 {
			s += "\n"
		}
		s += d.Error()
	}
	return s
}
