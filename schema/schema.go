// Package schema loads a mesh repository (CUE, YAML and JSON files) into the
// typed model of package model, checking it against the embedded CUE schema
// (schema/*.cue, package mesh) and the user's own guardrails (policies/*.cue).
//
// It is the only package of gitmesh that imports cuelang.org/go; no cue.Value
// leaves it. Every problem with the input becomes a model.Diagnostic
// positioned at the user's file, line and column.
//
// How it evaluates: the schema is applied one entity at a time (each
// service, gateway, external service and extension on its own) rather than
// in one unification of the whole repository, which bounds memory (a CUE
// runtime keeps everything it evaluated) and lets entities be checked in
// parallel. Cross-entity rules (references, weight sums) live in package
// policies, so per-entity evaluation loses nothing. Plain-data repositories
// (literal CUE, YAML, JSON: the common case) are split into entities
// straight from syntax and checked on several workers, each with its own
// CUE runtime; anything else (references, templates, comprehensions,
// imports) is first evaluated as one package, then checked entity by
// entity (see plain.go). BenchmarkLoad measures both memory and CPU.
//
// # Incremental loads
//
// A long-running caller (the reconciler) passes one Cache in Options.Cache
// to every Load. The cache remembers each data file by path and content
// hash, and each entity's result by a fingerprint of its syntax and
// positions, so a commit that changes one service file re-parses one file
// and re-checks one entity; entity-local guardrails are re-run on that
// entity only. The result is exactly that of a load without a cache.
// BenchmarkLoadIncremental measures it (cache.go, incremental.go,
// railcache.go).
//
// # User guardrails
//
// Users add rules as CUE files under policies/ in their mesh repository,
// package guardrails:
//
//	package guardrails
//
//	guardrails: "require-owner": {
//		code:     "ACME001" // stable code shown in output; default GM0009
//		severity: "error"   // error | warning | info; default error
//		message:  "every version needs an owner label"
//		// check is unified with the mesh data (after schema defaults);
//		// every conflict or missing value is one finding, positioned at
//		// the offending data.
//		check: services: [string]: versions: [string]: labels: owner!: string
//	}
//
// Violations are returned by Load among the other diagnostics; a malformed
// guardrail file is GM0008 at its position. GUARDRAILS.md has the details.
package schema

import (
	"embed"
	"fmt"
	"sort"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/parser"
)

// schemaFiles is the CUE schema, compiled into every binary so that a mesh
// repository cannot bring its own.
//
//go:embed *.cue
var schemaFiles embed.FS

// Codes of the findings this package reports (GM00xx).
const (
	CodeSyntax         = "GM0001"
	CodeSchema         = "GM0002"
	CodeIncomplete     = "GM0003"
	CodeFileTooBig     = "GM0004"
	CodeRepoTooBig     = "GM0005"
	CodeUnsafePath     = "GM0006"
	CodeTimeout        = "GM0007"
	CodeGuardrailDef   = "GM0008"
	CodeGuardrailCheck = "GM0009"
	CodeMemory         = "GM0010"
)

// schemaPrefix marks positions inside the embedded schema, so diagnostics
// never point users at files they cannot see.
const schemaPrefix = "$schema/"

// parseSchema parses the embedded schema files. They are parsed per load
// because ASTs are mutated when compiled into a runtime.
func parseSchema() ([]*ast.File, error) {
	entries, err := schemaFiles.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("read embedded schema: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	files := make([]*ast.File, 0, len(names))
	for _, n := range names {
		src, err := schemaFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read embedded schema %s: %w", n, err)
		}
		f, err := parser.ParseFile(schemaPrefix+n, src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse embedded schema %s: %w", n, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// compileSchema builds the schema alone in ctx and returns #Mesh.
func compileSchema(ctx *cue.Context) (cue.Value, error) {
	files, err := parseSchema()
	if err != nil {
		return cue.Value{}, err
	}
	v, err := buildFiles(ctx, "mesh", files)
	if err != nil {
		return cue.Value{}, fmt.Errorf("build embedded schema: %w", err)
	}
	if err := v.Err(); err != nil {
		return cue.Value{}, fmt.Errorf("build embedded schema: %w", err)
	}
	return v, nil
}

// buildFiles builds files as one package instance whatever their
// directories: load.Instances would split a repository by directory.
func buildFiles(ctx *cue.Context, pkg string, files []*ast.File) (cue.Value, error) {
	bi := build.NewContext().NewInstance("gitmesh.local/"+pkg, nil)
	bi.PkgName = pkg
	for _, f := range files {
		if err := bi.AddSyntax(f); err != nil {
			return cue.Value{}, err
		}
	}
	v := ctx.BuildInstance(bi)
	return v, nil
}
