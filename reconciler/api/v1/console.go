package apiv1

import "github.com/gitmesh/gitmesh/schema/model"

// Revisions is GET /api/v1/revisions: the live revision, the newest
// attempt when it failed (with its findings and a repository link for
// each), and the applied revisions, newest first (at most 50, since the
// process started or restored its state).
type Revisions struct {
	Live   *Revision `json:"live,omitempty"`
	Failed *Attempt  `json:"failed,omitempty"`
	// Findings are the failed attempt's findings, each with its link.
	Findings []Finding  `json:"findings,omitempty"`
	Applied  []Revision `json:"applied"`
	// RepoURLTemplate is --repo-url-template ({rev}, {file}, {line} and
	// {col} are replaced), for clients that link other positions; every
	// finding here carries its link already (api.FindingLink).
	RepoURLTemplate string `json:"repoUrlTemplate,omitempty"`
}

// Finding is a finding with its link into the repository browser.
type Finding struct {
	model.Diagnostic
	Link string `json:"link,omitempty"`
}
