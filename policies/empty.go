package policies

import "github.com/gitmesh/gitmesh/schema/model"

// checkEmpty refuses a mesh without services (GM0504) unless mesh.allowEmpty
// says it is meant. A commit that deletes every mesh file (a bad merge, a
// moved directory, a wrong --path) otherwise loads as a valid empty mesh,
// and serve would take every proxy's configuration away while reporting
// Ready. The opt-in is a field in the repository so that the reviewer of
// the pull request sees it.
//
// The finding is at the `mesh` block when the repository has one, else at
// the first gateway or external service, else at the repository
// root ("."), so it names a place even when no file is left.
func checkEmpty(c *checker) {
	if len(c.m.Services) > 0 || c.m.Mesh.AllowEmpty {
		return
	}
	d := model.Diagnostic{
		Code:     CodeEmptyMesh,
		Severity: severityOf[CodeEmptyMesh],
		Path:     "services",
		Message:  "the mesh has no services: serving it would remove every sidecar's configuration; set mesh.allowEmpty: true if that is intended",
	}
	places := []string{"mesh"}
	for _, g := range c.ix.gateways {
		places = append(places, model.Path("gateways", g))
	}
	for _, e := range c.ix.externals {
		places = append(places, model.Path("external", e))
	}
	for _, p := range places {
		if d.Pos = c.m.Sources.Lookup(p); d.Pos.IsValid() {
			break
		}
	}
	if !d.Pos.IsValid() {
		d.Pos = model.Pos{File: "."}
	}
	c.ds = append(c.ds, d)
}
