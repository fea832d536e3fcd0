package schema

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"cuelang.org/go/cue/ast"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Options bounds loading of untrusted repositories: a pull request can hold
// anything, so every resource the loader spends on it has a limit.
type Options struct {
	MaxFileSize  int64         // default 1 MiB
	MaxTotalSize int64         // default 64 MiB
	Timeout      time.Duration // default 30s; evaluation is cancelled after it
	Ignore       []string      // extra path prefixes to skip (status dirs etc.)
	// Cache, when set, makes the load incremental: files and entities
	// unchanged since the previous load through the same Cache are not
	// parsed or checked again (see Cache). nil loads everything.
	Cache *Cache
	// Sandbox, when set, evaluates in a worker process with capped
	// memory (see Sandbox); nil evaluates in this process, unbounded.
	// Everything that loads untrusted input (the gitmesh commands) sets
	// it; the result is the same either way (TestSandboxAgrees).
	Sandbox *Sandbox

	// tune picks among the loader's strategies, which give the same
	// result. Callers outside the package get the zero value, the
	// measured best; the package's tests and benchmarks set it to check
	// that the strategies agree and to compare their cost.
	tune tuning
}

// tuning holds the loader's internal switches; the zero value is what
// production runs.
type tuning struct {
	// generalPath sends plain repositories through the general path too
	// (see plain.go), so tests can check that both paths agree.
	generalPath bool
	// workers is the number of plain-path workers; 0 means GOMAXPROCS, at
	// most 4, since CUE's runtimes share a label index behind a lock.
	workers int
	// renewEvery is how many entities a worker checks in one CUE runtime
	// (see evaluator.renew); 0 means 128.
	renewEvery int
	// decodeViaCUE decodes validated values with cue.Value.Decode instead
	// of exporting JSON and using encoding/json. JSON won by measurement:
	// at 300 services decoding alone took 75 vs 115 CPU-ms, and a whole
	// load of 1,000 services allocates 299 vs 399 MB (BenchmarkLoadDecode).
	// The switch stays so the comparison can be re-run on new CUE versions.
	decodeViaCUE bool
}

// Defaults of Options.
const (
	DefaultMaxFileSize  = 1 << 20
	DefaultMaxTotalSize = 64 << 20
	DefaultTimeout      = 30 * time.Second
)

func (o Options) withDefaults() Options {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxTotalSize <= 0 {
		o.MaxTotalSize = DefaultMaxTotalSize
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Load loads the mesh repository in fsys. diags holds every problem with the input
// (positions relative to the repo root); when diags has errors, mesh may be nil.
// err is only for internal failures (never for bad input).
func Load(ctx context.Context, fsys fs.FS, opts Options) (*model.Mesh, model.Diagnostics, error) {
	opts = opts.withDefaults()
	files, diags, err := collect(fsys, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("load mesh repository: %w", err)
	}
	if hasCode(diags, CodeRepoTooBig) {
		diags.Sort()
		return nil, diags, nil
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var o outcome
	if opts.Sandbox != nil {
		o = opts.Sandbox.evaluate(ctx, files, opts)
	} else {
		o = evaluateHere(ctx, files, opts)
	}
	if o.r.err != nil {
		return nil, nil, o.r.err
	}
	if o.stopped {
		diags = append(diags, o.diagnostic(files))
		diags.Sort()
		return nil, diags, nil
	}
	diags = append(diags, o.r.diags...)
	diags.Sort()
	// The mesh is returned even with errors: it holds every entity that
	// decoded, which `gitmesh check` can still report on.
	return o.r.mesh, diags, nil
}

// evaluateHere evaluates in this process. CUE evaluation cannot be
// interrupted, so it runs in its own goroutine and is abandoned on
// timeout; stop makes it quit at the next entity. Nothing bounds its
// memory: callers that load untrusted input set Options.Sandbox.
func evaluateHere(ctx context.Context, files repoFiles, opts Options) outcome {
	var stop atomic.Bool
	done := make(chan loadResult, 1)
	ref := &evaluatorRef{}
	go func() {
		done <- evaluate(files, &stop, ref, opts)
	}()
	select {
	case r := <-done:
		return outcome{r: r}
	case <-ctx.Done():
		stop.Store(true)
		o := outcome{stopped: true, code: CodeTimeout, message: fmt.Sprintf("evaluation did not finish within %s", opts.Timeout)}
		if ctx.Err() == context.Canceled {
			o.message = "evaluation cancelled"
		}
		o.at, _ = ref.at.Load().(string)
		if src, _ := ref.sources.Load().(*model.Sources); src != nil && o.at != "" {
			// Sources is complete before evaluation starts and never
			// written after, so reading it here races with nothing.
			o.pos = src.Lookup(o.at)
		}
		return o
	}
}

// diagnostic is the finding of a load that was stopped (timeout, memory).
func (o outcome) diagnostic(files repoFiles) model.Diagnostic {
	d := model.Diagnostic{Code: o.code, Severity: model.SeverityError, Path: o.at, Pos: o.pos, Message: o.message}
	if !d.Pos.IsValid() && len(files.data) > 0 {
		// Stopped before any entity: the repository's first file is
		// where evaluation was, and a finding always names a file.
		d.Pos = model.Pos{File: files.data[0].path}
		d.Message += " (before the first entity was evaluated)"
	}
	return d
}

// LoadDir is Load over a directory on disk, refusing symlinks that leave it.
// It reads through os.Root, so even a link the walk missed cannot escape.
// A symlinked mesh file is read only if it resolves to a regular file inside
// the repository (else GM0006); symlinked directories are never followed.
func LoadDir(ctx context.Context, dir string, opts Options) (*model.Mesh, model.Diagnostics, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", dir, err)
	}
	defer root.Close()
	m, diags, err := Load(ctx, root.FS(), opts)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return m, diags, nil
}

type loadResult struct {
	mesh  *model.Mesh
	diags model.Diagnostics
	err   error
}

// evaluatorRef lets Load see how far the evaluation got when it times out
// without touching any CUE value.
type evaluatorRef struct {
	at      atomic.Value // string
	sources atomic.Value // *model.Sources
	// notify, when set, is told each move too (the sandbox's progress).
	notify func(at string)
}

// set records that evaluation moved to at.
func (r *evaluatorRef) set(at string) {
	r.at.Store(at)
	if r.notify != nil {
		r.notify(at)
	}
}

// evaluate parses, builds, validates and decodes. It never panics: a panic
// inside CUE becomes an internal error naming where it happened.
func evaluate(files repoFiles, stop *atomic.Bool, ref *evaluatorRef, opts Options) (r loadResult) {
	at := "parse"
	defer func() {
		if p := recover(); p != nil {
			if s, _ := ref.at.Load().(string); s != "" {
				at = s
			}
			r = loadResult{err: fmt.Errorf("evaluate mesh at %s: cue panicked: %v\n%s", at, p, debug.Stack())}
		}
	}()
	if opts.Cache != nil && !opts.tune.generalPath {
		if r, ok := evaluateCached(files, stop, ref, opts.Cache, opts.tune); ok {
			return r
		}
	}
	diags, asts := parseAll(files.data)
	sources := model.NewSources()
	recordSources(sources, asts)
	ref.sources.Store(sources)
	ref.set("")
	if len(diags) > 0 {
		// A file that does not parse would make every reference into it
		// look broken; report syntax first.
		return loadResult{diags: diags}
	}

	at = "build"
	keepJSON := len(files.guardrails) > 0
	onEntity := func(s string) { ref.set(s) }
	var (
		dec *decoder
		e   *evaluator
		err error
	)
	if pm, ok := splitPlain(asts); ok && !opts.tune.generalPath {
		asts = nil // pm holds the syntax now, and frees it as it goes
		jobs := pm.jobs()
		results, err := checkPlain(jobs, stop, sources, keepJSON, onEntity, opts.tune)
		if err != nil {
			return loadResult{err: err}
		}
		dec = newDecoder(keepJSON)
		diags = append(diags, putResults(dec, jobs, results)...)
		// Guardrails need a runtime of their own.
		if e, err = newEvaluator(stop, sources, opts.tune); err != nil {
			return loadResult{err: err}
		}
	} else {
		if e, err = newEvaluator(stop, sources, opts.tune); err != nil {
			return loadResult{err: err}
		}
		e.onEntity = onEntity
		dec = newDecoder(keepJSON)
		if data, ok := e.evalData(asts); ok {
			e.checkMesh(data, dec)
		}
	}
	if e.err != nil {
		return loadResult{err: e.err}
	}
	diags = append(diags, e.diags...)
	m := dec.mesh
	m.Sources = sources
	if keepJSON && !stop.Load() {
		ref.set(guardrailStage)
		diags = append(diags, e.checkGuardrails(files.guardrails, dec)...)
		if e.err != nil {
			return loadResult{err: e.err}
		}
	}
	return loadResult{mesh: m, diags: diags}
}

// parseAll parses the data files on all cores (the parser shares no
// state; at 10,000 files parsing was a tenth of the load) and returns the
// syntax in file order, so Sources stays deterministic.
func parseAll(files []repoFile) (model.Diagnostics, []*ast.File) {
	parsed := make([]*ast.File, len(files))
	fileDiags := make([]model.Diagnostics, len(files))
	parallelParse(len(files), func(i int) {
		parsed[i], fileDiags[i] = parseData(files[i], "mesh")
	})
	var diags model.Diagnostics
	asts := make([]*ast.File, 0, len(files))
	for i := range files {
		diags = append(diags, fileDiags[i]...)
		if parsed[i] != nil {
			asts = append(asts, parsed[i])
		}
	}
	return diags, asts
}

func hasCode(ds model.Diagnostics, code string) bool {
	for _, d := range ds {
		if d.Code == code {
			return true
		}
	}
	return false
}
