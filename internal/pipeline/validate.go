// Package pipeline strings the pure stages together — load, check, render —
// the same way for every entry point (validate, render, check, serve), so
// that a revision passes or fails for the same reasons everywhere.
package pipeline

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/gitmesh/gitmesh/policies"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Validate loads the mesh repository in fsys and runs the policies over it.
// The diagnostics hold every finding, sorted; mesh is nil when loading
// failed. err is for internal failures only, never for bad input.
func Validate(ctx context.Context, fsys fs.FS, opts schema.Options) (*model.Mesh, model.Diagnostics, error) {
	m, diags, err := schema.Load(ctx, fsys, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("load: %w", err)
	}
	return check(m, diags)
}

// ValidateDir is Validate over a directory on disk; it refuses symlinks that
// leave the directory.
func ValidateDir(ctx context.Context, dir string, opts schema.Options) (*model.Mesh, model.Diagnostics, error) {
	m, diags, err := schema.LoadDir(ctx, dir, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return check(m, diags)
}

// check runs the policies unless loading already failed: policies assume a
// schema-valid model, and reporting reference errors on a half-decoded one
// would only add noise to the real error.
func check(m *model.Mesh, diags model.Diagnostics) (*model.Mesh, model.Diagnostics, error) {
	if m != nil && !diags.HasErrors() {
		diags = append(diags, policies.Check(m)...)
	}
	diags.Sort()
	return m, diags, nil
}
