package reconciler

import "github.com/gitmesh/gitmesh/schema/model"

// Mesh returns the mesh the served configuration was rendered from, nil
// before the first revision is loaded (a state restored from disk has no
// model). The sidecar injector reads it to place pods; callers must not
// modify it. Safe for concurrent use.
func (r *Reconciler) Mesh() *model.Mesh {
	_, m := r.LiveMesh()
	return m
}

// LiveMesh is Mesh with the id of the revision it is: the console's graph
// is computed from it, so the console adds no second source of truth.
func (r *Reconciler) LiveMesh() (revision string, m *model.Mesh) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.live == nil {
		return "", nil
	}
	return r.live.revision, r.live.mesh
}
