// Package check is `gitmesh check`: it judges a pull request by loading the
// mesh at a base revision and at head, running schema, policies and render
// on both, and reporting what the change adds — new findings (those already
// present at base are marked pre-existing and not blamed) and, for every
// proxy class, a semantic diff of the Envoy resources it would receive.
//
// The base revision is read straight from the Git object store (no checkout,
// no network); head is the working tree (read through os.Root, so symlinks
// cannot leave it) or another revision. Both sides go through the same
// bounded loader as `gitmesh validate`, because a pull request is untrusted.
package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/render/traffic"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Options say what to compare and how strictly.
type Options struct {
	// Dir is the mesh directory inside a Git work tree; its path relative to
	// the repository root is the mesh subdirectory at every revision.
	Dir string
	// Base is the revision the pull request targets (branch, tag, SHA,
	// "origin/main", "HEAD~1"). Required.
	Base string
	// Head is the revision under test; "" means the working tree of Dir.
	Head string
	// Load bounds loading of both sides (file sizes, evaluation time).
	Load schema.Options
	// FailOn is the lowest severity of a new finding that fails the check;
	// the zero value is SeverityError.
	FailOn model.Severity
}

// UsageError marks errors caused by the arguments (no such revision, DIR not
// in a Git repository), so the CLI can exit 2 with a clear message.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Run performs the check. Problems with the mesh are findings in the
// report; the error is for bad arguments (*UsageError) and internal failures.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Base == "" {
		return nil, &UsageError{errors.New("--base is required")}
	}
	repo, root, sub, err := openRepo(opts.Dir)
	if err != nil {
		return nil, &UsageError{err}
	}
	baseFS, baseCommit, err := revisionFS(repo, opts.Base, sub)
	if err != nil {
		return nil, &UsageError{fmt.Errorf("base: %w", err)}
	}
	headRev := Revision{Name: opts.Head}
	var headFS fs.FS
	if opts.Head == "" {
		headRev.Name = "working tree"
		if h, err := repo.Head(); err == nil {
			headRev.Commit = h.Hash().String()
		}
	} else if headFS, headRev.Commit, err = revisionFS(repo, opts.Head, sub); err != nil {
		return nil, &UsageError{fmt.Errorf("head: %w", err)}
	}
	// Base loads first through a cache that head then shares: a pull
	// request changes a few files, and the loader re-checks only the
	// entities whose files changed (a 1,000-service mesh costs one load,
	// not two).
	if opts.Load.Cache == nil {
		opts.Load.Cache = schema.NewCache()
	}
	var base *Side
	if _, absent := baseFS.(emptyFS); absent {
		base, err = absentSide(ctx)
	} else {
		base, err = LoadSide(ctx, baseFS, opts.Load)
	}
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", opts.Base, err)
	}
	var head *Side
	if headFS == nil {
		head, err = loadWorkTree(ctx, filepath.Join(root, filepath.FromSlash(sub)), opts.Load)
	} else {
		head, err = LoadSide(ctx, headFS, opts.Load)
	}
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	rep := Compare(base, head, opts.FailOn)
	rep.Dir = sub
	for i := range rep.Findings {
		rep.Findings[i].File = repoPath(sub, rep.Findings[i].File)
	}
	rep.Base = Revision{Name: opts.Base, Commit: baseCommit}
	rep.Head = headRev
	return rep, nil
}

// openRepo finds the Git repository holding dir and returns it with its
// work tree root and dir's slash-separated path below that root ("." for
// the root itself).
func openRepo(dir string) (*git.Repository, string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", dir, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil || !st.IsDir() {
		return nil, "", "", fmt.Errorf("%s: not a directory", dir)
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: not in a git repository: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", dir, err)
	}
	root, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return nil, "", "", fmt.Errorf("repository root: %w", err)
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, "", "", fmt.Errorf("%s is outside the repository at %s", dir, root)
	}
	return repo, root, filepath.ToSlash(rel), nil
}

// revisionFS resolves rev and returns the mesh subdirectory at it. A mesh
// directory that does not exist at base is an empty mesh (the pull request
// adds it), not an error.
func revisionFS(repo *git.Repository, rev, sub string) (fs.FS, string, error) {
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, "", fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	fsys, err := source.TreeFS(repo, h.String(), sub)
	if errors.Is(err, source.ErrPathNotFound) {
		return emptyFS{}, h.String(), nil
	}
	if err != nil {
		return nil, "", err
	}
	return fsys, h.String(), nil
}

// Side is one revision of the mesh run through the whole pipeline.
type Side struct {
	// Mesh is the loaded model; nil when loading failed outright.
	Mesh *model.Mesh
	// Diags holds the findings of every pipeline step that ran (load,
	// policies, credentials, render) and of the suppressions file.
	Diags model.Diagnostics
	// Bundle is the rendered config; nil when the revision would not be
	// served (a step failed).
	Bundle *render.Bundle
	// RenderNote says why Bundle is nil, for the report.
	RenderNote string
	// FailedStep is the pipeline step that stopped this side, "" when
	// none did; the steps after it never ran, so their findings are
	// unknown, not absent.
	FailedStep string
	// Suppressions are the entries of .gitmesh/suppressions.yaml.
	Suppressions []Suppression
	// Tests are the traffic tests' verdicts on Bundle.
	Tests []traffic.Result
}

// loadWorkTree runs a directory on disk through the pipeline (its loader
// refuses symlinks leaving it); suppressions are read through os.Root.
func loadWorkTree(ctx context.Context, dir string, opts schema.Options) (*Side, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()
	return runSide(ctx, pipeline.Input{Dir: dir, Load: opts}, root.FS())
}

// LoadSide runs one revision held in fsys through the pipeline and parses
// its suppressions. It is exported for tests and the fuzz target, which
// build revisions in memory.
func LoadSide(ctx context.Context, fsys fs.FS, opts schema.Options) (*Side, error) {
	return runSide(ctx, pipeline.Input{Files: fsys, Load: opts}, fsys)
}

// absentSide is a base revision without the mesh directory: the pull
// request adds the mesh, so every class it renders is added. Serve
// refuses an empty mesh (GM0504) because a commit deleting every file is
// an outage; a base that never had a mesh is not one, so this side is the
// empty model passed to the pipeline as an already-checked mesh, which
// renders nothing and reports nothing.
func absentSide(ctx context.Context) (*Side, error) {
	empty := &model.Mesh{Mesh: model.MeshConfig{AllowEmpty: true}}
	return runSide(ctx, pipeline.Input{Mesh: empty}, emptyFS{})
}

// runSide runs the pipeline as validate does: a pull request has no
// credentials source and no discovered endpoints (see internal/pipeline).
func runSide(ctx context.Context, in pipeline.Input, fsys fs.FS) (*Side, error) {
	res := pipeline.Run(ctx, in)
	if res.Err != nil {
		return nil, res.Err
	}
	s := &Side{Mesh: res.Mesh, Diags: res.Diagnostics, Bundle: res.Bundle, FailedStep: res.FailedStep, Tests: res.Tests}
	if res.Bundle != nil {
		// Every step ran: only traffic tests failed, and they are
		// findings like any other.
		s.FailedStep = ""
	}
	switch {
	case res.Mesh == nil:
		s.RenderNote = "the mesh did not load"
	case s.FailedStep == pipeline.StepRender:
		s.RenderNote = "the mesh does not render"
	case s.FailedStep != "":
		s.RenderNote = "the mesh has errors and does not render"
	}
	sups, sdiags := readSuppressions(fsys)
	s.Suppressions = sups
	if len(sdiags) > 0 {
		s.Diags = append(s.Diags, sdiags...)
		s.Diags.Sort()
	}
	return s, nil
}

// repoPath turns a mesh-relative file into a repository-relative one, the
// form SARIF, GitHub annotations and PR comments need.
func repoPath(sub, file string) string {
	if file == "" {
		return ""
	}
	if sub == "" || sub == "." {
		return file
	}
	return path.Join(sub, file)
}

// RevisionFS returns the mesh directory dir as it is at Git revision rev
// of the repository holding dir, and the resolved commit, for commands
// that read one revision the way check reads its base (gitmesh explain
// --revision). A dir absent at rev is an error here: there is nothing to
// explain.
func RevisionFS(dir, rev string) (fs.FS, string, error) {
	repo, _, sub, err := openRepo(dir)
	if err != nil {
		return nil, "", err
	}
	fsys, commit, err := revisionFS(repo, rev, sub)
	if err != nil {
		return nil, "", err
	}
	if _, absent := fsys.(emptyFS); absent {
		return nil, "", fmt.Errorf("%s does not exist at %s", dir, rev)
	}
	return fsys, commit, nil
}
