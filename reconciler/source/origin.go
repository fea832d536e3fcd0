package source

import (
	"path"
	"strings"
)

// Origin says what a source reads: a Git remote, branch and directory, or
// a directory on disk. The state dir records it, so that a last good state
// written for `--path staging` is never restored for `--path prod`.
type Origin struct {
	// URL is the Git remote as String shows it (no credentials: NewGit
	// refuses them); "" for a directory source.
	URL string
	// Branch is the branch followed; "" for a directory source.
	Branch string
	// Path is the mesh's directory inside the repository, cleaned, "" for
	// the root.
	Path string
	// Dir is a directory source's absolute path; "" for Git.
	Dir string
}

// String describes the origin for errors and logs.
func (o Origin) String() string {
	if o.Dir != "" {
		return "directory " + o.Dir
	}
	s := o.URL + " branch " + o.Branch
	if o.Path != "" {
		s += " path " + o.Path
	}
	return s
}

// Origin implements the reconciler's origin check.
func (g *GitSource) Origin() Origin {
	return Origin{URL: g.display, Branch: g.opts.Branch, Path: strings.Trim(path.Clean("/"+g.opts.Path), "/")}
}

// Origin implements the reconciler's origin check.
func (d *DirSource) Origin() Origin { return Origin{Dir: d.root} }
