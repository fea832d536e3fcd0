// Package source provides the revisions gitmesh reconciles: from a Git
// remote (GitSource) or a plain directory (DirSource). A revision's files
// are an immutable, read-only fs.FS that reports symlinks as symlinks, so
// the schema loader can refuse links that leave the repository.
package source

import (
	"context"
	"io/fs"
	"time"
)

// Revision is one immutable state of the mesh repository.
type Revision struct {
	// ID names the state: a commit SHA (Git) or "dir:<sha256 of contents>"
	// (directory). Equal IDs mean equal files.
	ID string
	// Short is a 12-character form of ID for logs and status.
	Short string
	// Files is the tree at the configured path, read-only. It implements
	// fs.ReadLinkFS: symlinks are visible with Lstat/ReadLink and are
	// followed by Open only inside the tree, never to the host.
	Files fs.FS
	// Commit metadata; empty for directories.
	Message string
	Author  string
	Time    time.Time
}

// Source yields the newest revision of the mesh repository. The
// reconciler calls Latest on a timer or when a webhook fires; it must be
// cheap when nothing changed.
type Source interface {
	// Latest returns the newest revision, fetching only if the remote
	// moved. Errors are classified: see Transient and Permanent.
	Latest(ctx context.Context) (Revision, error)
	// String names the source for logs and status; it never holds a secret.
	String() string
}

// ShortID is the 12-character display form of a revision ID, after its
// "dir:" prefix if any: what logs, status and drift reports show.
func ShortID(id string) string {
	const prefix = "dir:"
	if len(id) > len(prefix) && id[:len(prefix)] == prefix {
		id = id[len(prefix):]
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
