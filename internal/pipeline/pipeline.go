// Package pipeline is the one place that composes gitmesh's stages — load,
// policies, the credentials a gateway needs, render and render's self-check
// — so that a revision passes or fails for the same reasons in every entry
// point: `gitmesh validate`, `gitmesh render`, `gitmesh check` (both
// sides), meshbench and the reconciler's steps behind `gitmesh serve`.
//
// What differs between entry points is an explicit Input, never another
// code path:
//
//   - Credentials: serve has a credentials source (--credentials-dir), so a
//     gateway listener naming a credential it lacks fails render (GM0804),
//     as serve would refuse it. validate, check and render have none: every
//     credential a listener names is reported as a warning (GM0601) that
//     says what serve will need, and render trusts the name.
//   - Endpoints: serve passes the endpoints discovered in Kubernetes; the
//     others render Git's endpoints only.
//   - Addresses: serve passes the ClusterIPs discovered in Kubernetes,
//     which become the VIPs of services that declare none; a ClusterIP
//     that clashes with another service's VIP is a policies finding
//     (GM0304) reported at render, where the addresses are known.
//   - Mesh: serve re-renders its live, already loaded and checked revision
//     when discovered endpoints change; load and policies are then skipped
//     because their output is given.
//   - Load: bounds on untrusted input, and the schema Cache that makes a
//     load incremental (check shares one between base and head, the
//     reconciler and meshbench between revisions).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/gitmesh/gitmesh/policies"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/render/traffic"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Step names, in the order Run runs them; Result.FailedStep is one of
// StepLoad, StepPolicies and StepRender.
const (
	// StepLoad parses the repository and checks it against the CUE schema.
	StepLoad = "load"
	// StepPolicies runs the semantic checks (references, routing,
	// security, guardrail packs) over a schema-valid model, and, when the
	// input has no credentials source, reports the gateway credentials
	// serve will need (GM0601 warnings, see NeedsCredentials).
	StepPolicies = "policies"
	// StepCredentials reads the credential names from serve's source, for
	// render to check every SDS name against: a credential the source
	// lacks is render's GM0804, as serve refuses it. Without a source it
	// does nothing; an unreadable source fails the run at render, as
	// transient.
	StepCredentials = "credentials"
	// StepRender renders every proxy class, runs render's validation
	// pass over every emitted resource (GM08xx), then the repository's
	// traffic tests on the rendered config (GM1104): a test that fails
	// fails the revision here, so serve keeps the last good one exactly
	// when validate and check report the failure.
	StepRender = "render"
)

// CredentialNames is where the gateway credentials serve can serve come
// from; reconciler.CredentialSource is one.
type CredentialNames interface {
	// Names lists the credentials that can be served.
	Names() (map[string]bool, error)
}

// Fixed returns an Input.Endpoints that always returns eps, for endpoints
// known before the run (an endpoint refresh compares them first).
func Fixed(eps map[string][]model.Endpoint) func(*model.Mesh) map[string][]model.Endpoint {
	return func(*model.Mesh) map[string][]model.Endpoint { return eps }
}

// StaticCredentials is a fixed set of credential names, such as the ones
// the live revision was rendered with.
type StaticCredentials map[string]bool

// Names returns the set itself.
func (s StaticCredentials) Names() (map[string]bool, error) { return s, nil }

// Input is what a pipeline run depends on. Exactly one of Files, Dir and
// Mesh says where the mesh comes from.
type Input struct {
	// Files is the mesh repository (a Git tree, a test's MapFS).
	Files fs.FS
	// Dir is a mesh repository on disk, loaded through schema.LoadDir,
	// which refuses symlinks that leave it.
	Dir string
	// Mesh is a model a previous Run loaded and checked without errors (the
	// reconciler's live revision): load and policies are skipped and their
	// findings are not repeated.
	Mesh *model.Mesh
	// Load bounds loading and carries the schema cache that makes it
	// incremental; pass the same Cache to consecutive runs over revisions
	// of one repository.
	Load schema.Options
	// Endpoints returns the endpoints discovered at run time for the loaded
	// mesh (discovery needs the model to know which services it finds);
	// they override Git's ("SERVICE/VERSION" keys, see render.Input). Nil
	// renders Git's endpoints only.
	Endpoints func(m *model.Mesh) map[string][]model.Endpoint
	// Addresses returns the service addresses discovered at run time
	// (Kubernetes ClusterIPs by service name, see render.Input). Nil means
	// declared and allocated VIPs only.
	Addresses func(m *model.Mesh) map[string][]string
	// RenderCache, when set, makes render incremental: what the previous
	// run through it rendered from unchanged inputs is reused (the output
	// is the same as without; see render.Cache). Pass the same Cache to
	// consecutive runs over revisions of one repository.
	RenderCache *render.Cache
	// Credentials is serve's credentials source. Nil means there is none
	// (validate, check, render): the credentials step reports what serve
	// will need (GM0601 warnings) and render trusts every credentialName.
	Credentials CredentialNames
}

// Result is the verdict of one run.
type Result struct {
	// Mesh is the loaded model; nil when loading failed outright.
	Mesh *model.Mesh
	// Diagnostics holds every finding of every step that ran, sorted.
	Diagnostics model.Diagnostics
	// Bundle is the rendered configuration; nil unless render succeeded.
	// When only traffic tests failed it is kept (check and explain read
	// it), but FailedStep is StepRender, so serve never applies it.
	Bundle *render.Bundle
	// Tests are the verdicts of the repository's traffic tests on Bundle,
	// in name order; failed ones are also GM1104 findings.
	Tests []traffic.Result
	// Render is the input the bundle was rendered from (the credential
	// names and endpoints serve records as live).
	Render render.Input
	// FailedStep is the step that stopped the run, "" when none did.
	FailedStep string
	// Err is set when FailedStep failed for a reason other than findings:
	// an internal error, or a credentials source that could not be read.
	Err error
	// Transient marks an Err that came from outside the revision (the
	// credentials source): running again may succeed.
	Transient bool
	// Timings is how long each step that ran took.
	Timings map[string]time.Duration
}

// OK reports whether every step passed: the revision is what serve serves.
func (r *Result) OK() bool { return r.FailedStep == "" }

// Errors returns the error findings, in order: what made the run fail
// when FailedStep is set and Err is not.
func (r *Result) Errors() model.Diagnostics {
	var out model.Diagnostics
	for _, d := range r.Diagnostics {
		if d.Severity == model.SeverityError {
			out = append(out, d)
		}
	}
	return out
}

// Summary says in one line why the run failed: the only error itself, or
// how many there are and the first, for logs, conditions and the status
// API's error field. It is "" when the run has no errors.
func (r *Result) Summary() string {
	errs := r.Errors()
	switch len(errs) {
	case 0:
		return ""
	case 1:
		return errs[0].Error()
	}
	return fmt.Sprintf("%d errors, first: %s", len(errs), errs[0].Error())
}

// step is one named stage. run adds its findings to res and returns false
// when the run must stop there.
type step struct {
	name string
	run  func(ctx context.Context, in *Input, res *Result) bool
}

// steps is the whole pipeline, in order. Policies assume a schema-valid
// model, so they run only after a clean load; render assumes a model the
// policies accept (a dangling reference would otherwise surface as a
// confusing render error), so it runs only when nothing before it found
// an error — exactly the rule serve applies before pushing a revision.
var steps = []step{
	{StepLoad, loadStep},
	{StepPolicies, policiesStep},
	{StepCredentials, credentialsStep},
	{StepRender, renderStep},
}

// Run runs the steps in order and stops at the first that fails. Problems
// with the mesh are findings in the result; Result.Err is for the rest.
func Run(ctx context.Context, in Input) *Result {
	res := &Result{Timings: map[string]time.Duration{}}
	for _, s := range steps {
		if in.Mesh != nil && (s.name == StepLoad || s.name == StepPolicies) {
			continue
		}
		t := time.Now()
		ok := s.run(ctx, &in, res)
		res.Timings[s.name] = time.Since(t)
		if !ok {
			if res.FailedStep == "" {
				res.FailedStep = s.name
			}
			break
		}
	}
	res.Diagnostics.Sort()
	return res
}

func loadStep(ctx context.Context, in *Input, res *Result) bool {
	var (
		m     *model.Mesh
		diags model.Diagnostics
		err   error
	)
	switch {
	case in.Files != nil:
		m, diags, err = schema.Load(ctx, in.Files, in.Load)
	case in.Dir != "":
		m, diags, err = schema.LoadDir(ctx, in.Dir, in.Load)
	default:
		err = errors.New("no mesh: set Files, Dir or Mesh")
	}
	if err != nil {
		res.Err = fmt.Errorf("load: %w", err)
		return false
	}
	res.Mesh, res.Diagnostics = m, diags
	return m != nil && !diags.HasErrors()
}

func policiesStep(_ context.Context, in *Input, res *Result) bool {
	ds := policies.Check(res.Mesh)
	res.Diagnostics = append(res.Diagnostics, ds...)
	if in.Credentials == nil {
		// A pure function of the model, reported with the policies' own
		// findings so that a policy error elsewhere does not hide it.
		res.Diagnostics = append(res.Diagnostics, NeedsCredentials(res.Mesh)...)
	}
	return !ds.HasErrors()
}

func credentialsStep(_ context.Context, in *Input, res *Result) bool {
	if in.Mesh != nil {
		res.Mesh = in.Mesh
	}
	if in.Credentials == nil {
		return true
	}
	names, err := in.Credentials.Names()
	if err != nil {
		// Reported as render's failure: render is what needs the names.
		res.Err, res.Transient = fmt.Errorf("credentials: %w", err), true
		res.FailedStep = StepRender
		return false
	}
	res.Render.Credentials = names
	return true
}

func renderStep(_ context.Context, in *Input, res *Result) bool {
	res.Render.Mesh = res.Mesh
	if in.Endpoints != nil {
		res.Render.Endpoints = in.Endpoints(res.Mesh)
	}
	if in.Addresses != nil {
		res.Render.Addresses = in.Addresses(res.Mesh)
		// Policies judged the VIPs Git alone gives; discovered ones are
		// judged here, with the same rule, before render uses them.
		if ds := policies.VIPFindings(res.Mesh, res.Render.Addresses); len(ds) > 0 {
			res.Diagnostics = append(res.Diagnostics, ds...)
			if ds.HasErrors() {
				return false
			}
		}
	}
	var b *render.Bundle
	var err error
	if in.RenderCache != nil {
		b, err = in.RenderCache.Render(res.Render)
	} else {
		b, err = render.Render(res.Render)
	}
	if err != nil {
		var ds model.Diagnostics
		if !errors.As(err, &ds) {
			res.Err = fmt.Errorf("render: %w", err)
			return false
		}
		res.Diagnostics = append(res.Diagnostics, ds...)
		return false
	}
	res.Bundle = b
	if in.Mesh != nil {
		// A re-render of a revision already judged (serve's endpoint
		// refresh): its tests passed when it was loaded, and they do not
		// depend on discovered endpoints (render/traffic).
		return true
	}
	return testsStep(res)
}

// testsStep runs the traffic tests on the rendered bundle; each failure is
// a GM1104 error at the test's position.
func testsStep(res *Result) bool {
	res.Tests = traffic.RunTests(res.Mesh, res.Bundle, res.Render)
	ok := true
	for _, t := range res.Tests {
		if t.Passed() {
			continue
		}
		ok = false
		path := model.Path("tests", t.Name)
		res.Diagnostics = append(res.Diagnostics, model.Diagnostic{
			Code:     policies.CodeTestFails,
			Severity: model.SeverityError,
			Pos:      res.Mesh.Sources.Lookup(path),
			Path:     path,
			Message:  t.Message(),
		})
	}
	return ok
}
