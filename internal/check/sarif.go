package check

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gitmesh/gitmesh/policies"
	"github.com/gitmesh/gitmesh/schema/model"
)

// SARIF 2.1.0 as code scanning (GitHub, GitLab) reads it. Only the fields
// gitmesh fills are declared; the names are the specification's.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	// InformationURI is where the codes are documented.
	InformationURI = "https://github.com/gitmesh/gitmesh/blob/main/policies/CODES.md"
)

// SARIFLog is the top-level SARIF object; exported so tests (and tools)
// can read what gitmesh writes.
type SARIFLog struct {
	Version string     `json:"version"`
	Schema  string     `json:"$schema"`
	Runs    []SARIFRun `json:"runs"`
}

// SARIFRun is one run of one tool.
type SARIFRun struct {
	Tool    SARIFTool     `json:"tool"`
	Results []SARIFResult `json:"results"`
}

// SARIFTool names the tool and its rules.
type SARIFTool struct {
	Driver SARIFDriver `json:"driver"`
}

// SARIFDriver is gitmesh itself.
type SARIFDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []SARIFRule `json:"rules"`
}

// SARIFRule describes one finding code.
type SARIFRule struct {
	ID               string       `json:"id"`
	ShortDescription SARIFMessage `json:"shortDescription"`
	HelpURI          string       `json:"helpUri,omitempty"`
}

// SARIFMessage is SARIF's message object.
type SARIFMessage struct {
	Text string `json:"text"`
}

// SARIFResult is one finding.
type SARIFResult struct {
	RuleID        string             `json:"ruleId"`
	Level         string             `json:"level"`
	Message       SARIFMessage       `json:"message"`
	Locations     []SARIFLocation    `json:"locations"`
	BaselineState string             `json:"baselineState,omitempty"`
	Suppressions  []SARIFSuppression `json:"suppressions,omitempty"`
}

// SARIFLocation wraps a physical location.
type SARIFLocation struct {
	PhysicalLocation SARIFPhysicalLocation `json:"physicalLocation"`
}

// SARIFPhysicalLocation is a file and, when known, a region in it.
type SARIFPhysicalLocation struct {
	ArtifactLocation SARIFArtifactLocation `json:"artifactLocation"`
	Region           *SARIFRegion          `json:"region,omitempty"`
}

// SARIFArtifactLocation is a repository-relative URI.
type SARIFArtifactLocation struct {
	URI string `json:"uri"`
}

// SARIFRegion is a 1-based start position.
type SARIFRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

// SARIFSuppression records an accepted finding with its reason.
type SARIFSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification"`
}

// codeTitles adds check's own codes to the policies table for rule text.
var codeTitles = map[string]string{
	CodeSuppressionNoReason: "suppression without a reason",
	CodeSuppressionInvalid:  "invalid suppressions file",
	CodeSuppressionUnused:   "suppression matches no finding",
}

func codeTitle(code string) string {
	if t, ok := codeTitles[code]; ok {
		return t
	}
	if c, ok := policies.LookupCode(code); ok {
		return c.Title
	}
	if strings.HasPrefix(code, "GM08") {
		return "render error"
	}
	return "gitmesh finding " + code
}

// BuildSARIF converts a report to SARIF: every head finding is a result;
// pre-existing ones carry baselineState "unchanged", suppressed ones a
// suppression with the reason as justification.
func BuildSARIF(rep *Report) SARIFLog {
	run := SARIFRun{
		Tool:    SARIFTool{Driver: SARIFDriver{Name: "gitmesh", InformationURI: InformationURI, Rules: []SARIFRule{}}},
		Results: []SARIFResult{},
	}
	seen := map[string]bool{}
	for _, f := range rep.Findings {
		if !seen[f.Code] {
			seen[f.Code] = true
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, SARIFRule{
				ID: f.Code, ShortDescription: SARIFMessage{Text: codeTitle(f.Code)}, HelpURI: InformationURI})
		}
		res := SARIFResult{RuleID: f.Code, Level: sarifLevel(f.Severity),
			Message: SARIFMessage{Text: pathPrefix(f.Path) + f.Message}, BaselineState: "new"}
		uri := f.File
		if uri == "" {
			// Code scanning needs a location; a finding about the whole
			// mesh points at its directory.
			uri = rep.Dir
		}
		loc := SARIFLocation{PhysicalLocation: SARIFPhysicalLocation{ArtifactLocation: SARIFArtifactLocation{URI: uri}}}
		if f.Line > 0 {
			loc.PhysicalLocation.Region = &SARIFRegion{StartLine: f.Line, StartColumn: f.Col}
		}
		res.Locations = []SARIFLocation{loc}
		switch f.Status {
		case StatusPreExisting:
			res.BaselineState = "unchanged"
		case StatusSuppressed:
			res.Suppressions = []SARIFSuppression{{Kind: "external", Status: "accepted", Justification: f.Reason}}
		}
		run.Results = append(run.Results, res)
	}
	sort.Slice(run.Tool.Driver.Rules, func(i, j int) bool { return run.Tool.Driver.Rules[i].ID < run.Tool.Driver.Rules[j].ID })
	return SARIFLog{Version: sarifVersion, Schema: sarifSchema, Runs: []SARIFRun{run}}
}

func sarifLevel(s model.Severity) string {
	switch s {
	case model.SeverityError:
		return "error"
	case model.SeverityWarning:
		return "warning"
	}
	return "note"
}

func writeSARIF(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(BuildSARIF(rep)); err != nil {
		return fmt.Errorf("write sarif: %w", err)
	}
	return nil
}

// writeGitHub prints GitHub Actions workflow commands — one annotation per
// new finding, on the file and line, so the pull request's diff view shows
// it — followed by the plain text report for the job log.
func writeGitHub(w io.Writer, rep *Report) error {
	ew := &errWriter{w: w}
	for _, f := range rep.Findings {
		if f.Status != StatusNew {
			continue
		}
		cmd := map[model.Severity]string{model.SeverityError: "error", model.SeverityWarning: "warning"}[f.Severity]
		if cmd == "" {
			cmd = "notice"
		}
		props := []string{}
		if f.File != "" {
			props = append(props, "file="+ghProperty(f.File))
			if f.Line > 0 {
				props = append(props, fmt.Sprintf("line=%d", f.Line))
				if f.Col > 0 {
					props = append(props, fmt.Sprintf("col=%d", f.Col))
				}
			}
		}
		props = append(props, "title="+ghProperty(f.Code))
		ew.printf("::%s %s::%s\n", cmd, strings.Join(props, ","), ghData(pathPrefix(f.Path)+f.Message))
	}
	if ew.err != nil {
		return ew.err
	}
	return writeText(w, rep, false)
}

// ghData escapes a workflow command's message the way the Actions runner
// unescapes it.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow command property, which also ends at ":"
// and ",".
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
