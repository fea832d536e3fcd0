package apiv1

import "github.com/gitmesh/gitmesh/schema/model"

// Tests is GET /api/v1/tests: the verdicts of the repository's traffic
// tests as the reconciler's pipeline run computed them (never re-run for
// the request): the live revision's, and the newest attempt's when it
// failed after running them (its failing tests are also its GM1104
// findings).
type Tests struct {
	Live *TestRun `json:"live,omitempty"`
	// Failed is the newest attempt's run when that attempt failed with
	// its tests run (a revision that fails to load, check or render runs
	// none).
	Failed *TestRun `json:"failed,omitempty"`
	// Note says why Live is absent: nothing served yet, or a revision
	// restored from disk that has not been evaluated since.
	Note string `json:"note,omitempty"`
	// RepoURLTemplate is --repo-url-template ({rev}, {file}, {line},
	// {col}), as in Revisions.
	RepoURLTemplate string `json:"repoUrlTemplate,omitempty"`
}

// TestRun is one revision's traffic tests, in name order, at most
// MaxTests of them.
type TestRun struct {
	Revision string       `json:"revision"`
	Tests    []TestResult `json:"tests"`
	// Total, Passed and Failed count every test of the run, listed or not.
	Total  int `json:"total"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// MaxTests bounds the tests a run lists: a repository with thousands of
// tests must not make the document megabytes long. Failed tests are
// listed first when the run has more.
const MaxTests = 1000

// TestResult is one traffic test's verdict.
type TestResult struct {
	Name string `json:"name"`
	// Pos is the test's position in the repository (relative to the
	// mesh's directory); Link opens it in the repository browser.
	Pos    model.Pos `json:"pos"`
	Link   string    `json:"link,omitempty"`
	Passed bool      `json:"passed"`
	// Outcome is what the request did, in one line (`gitmesh explain`'s
	// last line); empty when the test could not be evaluated.
	Outcome string `json:"outcome,omitempty"`
	// Problems say how the outcome differs from the expectation (or why
	// the test could not be evaluated); empty when it passed.
	Problems []string `json:"problems,omitempty"`
}
