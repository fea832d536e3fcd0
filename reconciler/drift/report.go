// Package drift says where the running mesh is not what Git says: proxies
// that rejected or never took the served config, proxies the mesh does not
// declare, services without endpoints, Kubernetes objects Git does not know,
// certificates about to expire, and a newest revision that is not served.
//
// Build is a pure function from what the control plane observes to a list
// of findings; a Tracker gives each finding the time it was first seen; a
// Report is the stable, diff-friendly document committed to Git and served
// at GET /api/v1/drift. Reports are compared by meaning (Same), never by
// timestamps, so a steady mesh makes no commits.
package drift

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Severity ranks a finding. Errors are config the mesh is not running;
// warnings are config at risk; info is worth knowing.
type Severity string

// Severities, worst first.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	}
	return 2
}

// Finding is one way the running mesh differs from Git.
type Finding struct {
	// Code is stable across releases (drift/CODES.md); tools key on it.
	Code     string   `json:"code" yaml:"code"`
	Severity Severity `json:"severity" yaml:"severity"`
	// Objects names what is involved, most specific first, as KIND/NAME
	// ("proxy/sidecar/default/reviews/v3/pod-1", "service/default/reviews",
	// "kubernetes/service/default/legacy", "revision/1a2b3c4d5e6f").
	Objects []string `json:"objects" yaml:"objects"`
	// Message says what is wrong in one line. It holds no timestamps that
	// move on their own, so an unchanged situation reads the same twice.
	Message string `json:"message" yaml:"message"`
	// FirstSeen is when gitmesh first observed this finding (by code and
	// objects) without interruption.
	FirstSeen time.Time `json:"firstSeen" yaml:"firstSeen"`
}

// key identifies a finding across reports: the same code about the same
// objects is the same finding, even if its message changed.
func (f Finding) key() string { return f.Code + "\x00" + strings.Join(f.Objects, "\x00") }

// Revision is the served revision and, when it differs, the newest one Git
// has with why it is not served.
type Revision struct {
	Served string `json:"served,omitempty" yaml:"served,omitempty"`
	// Newest is the newest revision seen in Git when it is not Served.
	Newest string `json:"newest,omitempty" yaml:"newest,omitempty"`
	// NewestStatus says why Newest is not served: "failed at check: …",
	// "fetch failing: …", "pending".
	NewestStatus string `json:"newestStatus,omitempty" yaml:"newestStatus,omitempty"`
}

// Summary counts findings by severity.
type Summary struct {
	Errors   int `json:"errors" yaml:"errors"`
	Warnings int `json:"warnings" yaml:"warnings"`
	Infos    int `json:"infos" yaml:"infos"`
}

// Report is the drift document. Field order is the YAML order, findings
// are sorted, so two reports of one situation are byte-identical but for
// GeneratedAt.
type Report struct {
	APIVersion string `json:"apiVersion" yaml:"apiVersion"`
	Kind       string `json:"kind" yaml:"kind"`
	Cluster    string `json:"cluster" yaml:"cluster"`
	Mesh       string `json:"mesh,omitempty" yaml:"mesh,omitempty"`
	// GeneratedAt is when the report was built. It alone never makes a
	// commit (see Same).
	GeneratedAt time.Time `json:"generatedAt" yaml:"generatedAt"`
	Revision    Revision  `json:"revision" yaml:"revision"`
	Summary     Summary   `json:"summary" yaml:"summary"`
	Findings    []Finding `json:"findings" yaml:"findings"`
}

// Report API identifiers, so the file says what it is when read alone.
const (
	APIVersion = "gitmesh.dev/v1"
	Kind       = "DriftReport"
)

// NewReport sorts findings and counts them.
func NewReport(cluster, mesh string, now time.Time, rev Revision, findings []Finding) *Report {
	fs := slices.Clone(findings)
	Sort(fs)
	r := &Report{APIVersion: APIVersion, Kind: Kind, Cluster: cluster, Mesh: mesh,
		GeneratedAt: now.UTC().Truncate(time.Second), Revision: rev, Findings: fs}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	for _, f := range fs {
		switch f.Severity {
		case SeverityError:
			r.Summary.Errors++
		case SeverityWarning:
			r.Summary.Warnings++
		default:
			r.Summary.Infos++
		}
	}
	return r
}

// Sort orders findings worst first, then by code and objects, so reports
// diff line by line.
func Sort(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Severity.rank(), b.Severity.rank()), cmp.Compare(a.Code, b.Code),
			slices.Compare(a.Objects, b.Objects), cmp.Compare(a.Message, b.Message))
	})
}

// YAML renders the report as committed.
// Fields keep the struct's order and long messages stay on one line, so
// a change is one line in `git diff`.
func (r *Report) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Parse reads a committed report back (to seed first-seen times after a
// restart, and to compare meaning with what the branch holds).
func Parse(b []byte) (*Report, error) {
	var r Report
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if r.APIVersion != APIVersion || r.Kind != Kind {
		return nil, fmt.Errorf("not a %s %s", APIVersion, Kind)
	}
	return &r, nil
}

// Same reports whether two reports mean the same: same cluster, revisions
// and findings (code, severity, objects, message, first seen). Only
// GeneratedAt may differ. A nil report is the same as nothing only if the
// other is nil too.
func Same(a, b *Report) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Cluster != b.Cluster || a.Mesh != b.Mesh || a.Revision != b.Revision || len(a.Findings) != len(b.Findings) {
		return false
	}
	for i := range a.Findings {
		x, y := a.Findings[i], b.Findings[i]
		if x.Code != y.Code || x.Severity != y.Severity || x.Message != y.Message ||
			!slices.Equal(x.Objects, y.Objects) || !x.FirstSeen.Equal(y.FirstSeen) {
			return false
		}
	}
	return true
}
