package policies

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// TestEmptyMesh: a mesh without services is an error unless the repository
// says it is meant, and the finding names a place even when no file is left.
func TestEmptyMesh(t *testing.T) {
	withMesh := model.NewSources()
	withMesh.Set("mesh", model.Pos{File: "mesh.cue", Line: 3, Col: 1})
	withGateway := model.NewSources()
	withGateway.Set("gateways.edge", model.Pos{File: "gateways/edge.cue", Line: 2, Col: 1})
	for _, tc := range []struct {
		name string
		m    *model.Mesh
		want string
	}{
		{"no file left", &model.Mesh{}, ".: services: the mesh has no services"},
		{"mesh block only", &model.Mesh{Sources: withMesh}, "mesh.cue:3:1: services: the mesh has no services"},
		{"gateways only", &model.Mesh{Sources: withGateway, Gateways: map[string]*model.Gateway{"edge": {}}}, "gateways/edge.cue:2:1: services: the mesh has no services"},
		{"allowed", &model.Mesh{Mesh: model.MeshConfig{AllowEmpty: true}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *model.Diagnostic
			for _, d := range Check(tc.m) {
				if d.Code == CodeEmptyMesh {
					got = &d
				}
			}
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("got %s, want no GM0504", got.Error())
			case tc.want == "":
			case got == nil:
				t.Fatalf("no GM0504, want %q", tc.want)
			case got.Severity != model.SeverityError || len(got.Error()) < len(tc.want) || got.Error()[:len(tc.want)] != tc.want:
				t.Fatalf("got %s %s, want error %q…", got.Severity, got.Error(), tc.want)
			}
		})
	}
	// Any service is enough: the check is about the empty mesh only.
	if ds := Check(bookinfo()); len(ds) != 0 {
		t.Fatalf("bookinfo: %s", ds.Error())
	}
}
