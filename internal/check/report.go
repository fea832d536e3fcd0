package check

import (
	"io/fs"
	"time"

	"github.com/gitmesh/gitmesh/schema/model"
)

// SchemaVersion is the version of the JSON report (FORMAT.md); it changes
// only when a field changes meaning or disappears.
const SchemaVersion = 1

// Report is the result of a check, the one value every output format is
// written from, so all formats agree (and exit codes are the same in all).
type Report struct {
	SchemaVersion int `json:"schemaVersion"`
	// Dir is the mesh directory relative to the repository root ("." for
	// the root).
	Dir  string   `json:"dir"`
	Base Revision `json:"base"`
	Head Revision `json:"head"`
	// Failed is true when a new, unsuppressed finding is at or above the
	// --fail-on severity: the check exits 1.
	Failed bool `json:"failed"`
	// FailOn is the severity that fails the check ("error" or "warning").
	FailOn   model.Severity `json:"failOn"`
	Counts   Counts         `json:"counts"`
	Findings []Finding      `json:"findings"`
	Impact   Impact         `json:"impact"`
	// Traffic lists the traffic tests (tests: in the mesh) whose outcome
	// or verdict changes from base to head.
	Traffic []TrafficChange `json:"traffic,omitempty"`
}

// Revision names one side of the comparison.
type Revision struct {
	// Name is what the user asked for ("origin/main", "working tree").
	Name string `json:"name"`
	// Commit is the resolved SHA ("" when unknown, e.g. a work tree
	// in a repository without commits).
	Commit string `json:"commit,omitempty"`
}

// Counts summarise the findings by status, for summaries and badges.
type Counts struct {
	NewErrors   int `json:"newErrors"`
	NewWarnings int `json:"newWarnings"`
	NewInfos    int `json:"newInfos"`
	PreExisting int `json:"preExisting"`
	Suppressed  int `json:"suppressed"`
	// Fixed counts base findings that head no longer has.
	Fixed int `json:"fixed"`
}

// Status says how a finding relates to the pull request.
type Status string

// The finding statuses.
const (
	// StatusNew is a finding the pull request introduces.
	StatusNew Status = "new"
	// StatusPreExisting was already present at base (same code, path and
	// message; lines are ignored because they move).
	StatusPreExisting Status = "pre-existing"
	// StatusSuppressed matches a suppression with a reason.
	StatusSuppressed Status = "suppressed"
)

// Finding is one diagnostic of the head revision with its status. File is
// relative to the repository root, not the mesh directory, so CI tools can
// annotate it directly.
type Finding struct {
	Code     string         `json:"code"`
	Severity model.Severity `json:"severity"`
	File     string         `json:"file,omitempty"`
	Line     int            `json:"line,omitempty"`
	Col      int            `json:"col,omitempty"`
	Path     string         `json:"path,omitempty"`
	Message  string         `json:"message"`
	Status   Status         `json:"status"`
	// Reason is the suppression's reason when Status is suppressed.
	Reason string `json:"reason,omitempty"`
}

// Blocking reports whether the finding fails a check at severity failOn.
func (f Finding) Blocking(failOn model.Severity) bool {
	return f.Status == StatusNew && f.Severity <= failOn
}

// Location formats file:line:col (or the file alone, or "-").
func (f Finding) Location() string {
	return model.Pos{File: f.File, Line: f.Line, Col: f.Col}.String()
}

// Impact is what the proxies would receive differently.
type Impact struct {
	// Available is false when either side does not render; Note says why.
	Available bool   `json:"available"`
	Note      string `json:"note,omitempty"`
	// Proxies is the number of proxy classes whose config changes.
	Proxies int `json:"proxies"`
	// Added, Changed and Removed count distinct resources (a cluster added
	// to 500 sidecars counts once).
	Added   int     `json:"added"`
	Changed int     `json:"changed"`
	Removed int     `json:"removed"`
	Groups  []Group `json:"groups"`
}

// Group is a set of proxy classes that see exactly the same change, so
// output stays short when every sidecar of a service changes alike.
type Group struct {
	Classes []string `json:"classes"`
	// Change is "changed", "added" (a new proxy class) or "removed".
	Change string `json:"change"`
	// Types lists the changes per resource type, in xDS apply order.
	Types []TypeDiff `json:"types,omitempty"`
}

// TypeDiff is the change to one resource type of a proxy class.
type TypeDiff struct {
	// Type is "cluster", "endpoints", "listener" or "route".
	Type    string         `json:"type"`
	Added   []string       `json:"added,omitempty"`
	Removed []string       `json:"removed,omitempty"`
	Changed []ResourceDiff `json:"changed,omitempty"`
}

// ResourceDiff is the readable difference of one changed resource.
type ResourceDiff struct {
	Name string `json:"name"`
	// Lines are the changes, semantic where gitmesh knows the field
	// ("weights v1 50→80, v3 50→20"), else "field.path: old → new".
	Lines []string `json:"lines"`
}

// emptyFS is a revision without the mesh directory: an empty mesh.
type emptyFS struct{}

func (emptyFS) Open(name string) (fs.File, error) {
	if name == "." {
		return emptyDir{}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

type emptyDir struct{}

func (emptyDir) Stat() (fs.FileInfo, error)         { return emptyDir{}, nil }
func (emptyDir) Read([]byte) (int, error)           { return 0, fs.ErrInvalid }
func (emptyDir) Close() error                       { return nil }
func (emptyDir) ReadDir(int) ([]fs.DirEntry, error) { return nil, nil }
func (emptyDir) Name() string                       { return "." }
func (emptyDir) Size() int64                        { return 0 }
func (emptyDir) Mode() fs.FileMode                  { return fs.ModeDir | 0o555 }
func (emptyDir) ModTime() time.Time                 { return time.Time{} }
func (emptyDir) IsDir() bool                        { return true }
func (emptyDir) Sys() any                           { return nil }
