package render

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	goldentest "github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// update rewrites the golden files: go test ./render -update

// goldenTypes names the golden file of each resource type.
var goldenTypes = map[string]string{
	resource.ClusterType:  "clusters",
	resource.EndpointType: "endpoints",
	resource.ListenerType: "listeners",
	resource.RouteType:    "routes",
}

// loadCase loads testdata/<name>.cue as a one-file mesh repository, so
// positions in diagnostics read "<name>.cue:line:col".
func loadCase(t testing.TB, name string) *model.Mesh {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name+".cue"))
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{name + ".cue": {Data: src}}
	m, diags, err := schema.Load(context.Background(), fsys, schema.Options{})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	if diags.HasErrors() {
		t.Fatalf("load %s:\n%v", name, diags)
	}
	return m
}

// cases lists testdata/*.cue.
func cases(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "*.cue"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".cue"))
	}
	return out
}

// goldenJSON renders one resource type of a bundle as
// {class: {name: resource}}, stably indented.
func goldenJSON(t testing.TB, b *Bundle, typeURL string) []byte {
	t.Helper()
	out := map[string]map[string]json.RawMessage{}
	for _, c := range b.Classes() {
		for _, r := range b.Proxy(c).Resources(typeURL) {
			raw, err := StableJSON(r.Message)
			if err != nil {
				t.Fatal(err)
			}
			if out[c] == nil {
				out[c] = map[string]json.RawMessage{}
			}
			out[c][r.Name] = raw
		}
	}
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(raw, '\n')
}

// TestGolden renders every testdata case and compares each resource type
// with testdata/<case>/<type>.golden.json.
func TestGolden(t *testing.T) {
	for _, name := range cases(t) {
		t.Run(name, func(t *testing.T) {
			b, err := Render(Input{Mesh: loadCase(t, name)})
			if err != nil {
				t.Fatalf("render:\n%v", err)
			}
			dir := filepath.Join("testdata", name)
			for typeURL, file := range goldenTypes {
				got := goldenJSON(t, b, typeURL)
				goldentest.Check(t, filepath.Join(dir, file+".golden.json"), got)
			}
		})
	}
}
