package render

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// strictInputs are every golden case and every example mesh.
func strictInputs(t testing.TB) map[string]*model.Mesh {
	t.Helper()
	out := map[string]*model.Mesh{}
	for _, name := range cases(t) {
		out["testdata/"+name] = loadCase(t, name)
	}
	dirs, err := filepath.Glob(filepath.Join("..", "examples", "*", "mesh.cue"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 3 {
		t.Fatalf("found %d example meshes, want at least 3", len(dirs))
	}
	for _, f := range dirs {
		dir := filepath.Dir(f)
		m, diags, err := schema.Load(context.Background(), os.DirFS(dir), schema.Options{})
		if err != nil || diags.HasErrors() {
			t.Fatalf("load %s: %v\n%v", dir, err, diags)
		}
		out["examples/"+filepath.Base(dir)] = m
	}
	return out
}

// TestEnvoyStrictGoldenAndExamples renders every golden case and every
// example: render runs the Envoy-strict check (render/envoystrict) on
// every bundle, so a case with any finding fails to render, and the
// findings are printed with their positions.
func TestEnvoyStrictGoldenAndExamples(t *testing.T) {
	for name, m := range strictInputs(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := Render(Input{Mesh: m}); err != nil {
				ds, ok := err.(model.Diagnostics)
				if !ok {
					t.Fatalf("render: %v", err)
				}
				for _, d := range ds {
					t.Errorf("%s %s", d.Code, d.Error())
				}
			}
		})
	}
}
