package pipeline

import (
	"context"
	"io/fs"

	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Validate runs the pipeline (Run) over fsys without credentials or
// discovered endpoints, as `gitmesh validate` does, for callers that need
// only the model and the findings. err is for internal failures only.
func Validate(ctx context.Context, fsys fs.FS, opts schema.Options) (*model.Mesh, model.Diagnostics, error) {
	res := Run(ctx, Input{Files: fsys, Load: opts})
	return res.Mesh, res.Diagnostics, internal(res)
}

// ValidateDir is Validate over a directory on disk; it refuses symlinks
// that leave the directory.
func ValidateDir(ctx context.Context, dir string, opts schema.Options) (*model.Mesh, model.Diagnostics, error) {
	res := Run(ctx, Input{Dir: dir, Load: opts})
	return res.Mesh, res.Diagnostics, internal(res)
}

func internal(res *Result) error {
	if res.Err != nil && !res.Transient {
		return res.Err
	}
	return nil
}
