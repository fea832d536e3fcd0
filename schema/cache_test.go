package schema

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/schema/model"
)

// loadCompare loads fsys through c and without a cache, fails the test
// unless both give the same mesh (Sources included) and diagnostics, and
// returns the cached load's results and stats.
func loadCompare(t *testing.T, c *Cache, fsys fstest.MapFS) (*model.Mesh, model.Diagnostics, CacheStats) {
	t.Helper()
	warm, wd, err := Load(context.Background(), fsys, Options{Cache: c})
	if err != nil {
		t.Fatalf("cached Load: %v", err)
	}
	stats := c.Stats()
	cold, cd, err := Load(context.Background(), fsys, Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if d := cmp.Diff(cold, warm, cmp.AllowUnexported(model.Sources{})); d != "" {
		t.Fatalf("cached mesh differs (-cold +cached):\n%s", d)
	}
	if d := cmp.Diff(diagLines(cd), diagLines(wd)); d != "" {
		t.Fatalf("cached diagnostics differ (-cold +cached):\n%s", d)
	}
	if d := cmp.Diff(cd, wd); d != "" {
		t.Fatalf("cached diagnostics differ (-cold +cached):\n%s", d)
	}
	return warm, wd, stats
}

// edit returns a copy of fsys with old replaced by new in file p.
func edit(t *testing.T, fsys fstest.MapFS, p, old, new string) fstest.MapFS {
	t.Helper()
	src := string(fsys[p].Data)
	if !strings.Contains(src, old) {
		t.Fatalf("%s does not contain %q", p, old)
	}
	out := maps.Clone(fsys)
	out[p] = &fstest.MapFile{Data: []byte(strings.Replace(src, old, new, 1)), Mode: 0o644}
	return out
}

// TestCacheColdWarm walks a 1,000-service mesh through a series of
// commits with one Cache: every load must equal a load without a cache,
// and re-check only what changed.
func TestCacheColdWarm(t *testing.T) {
	const n = 1000
	base := meshgen.Generate(n, meshgen.Options{Seed: 1})
	changed := edit(t, base, meshgen.ServiceFile(42), `timeout: "2s"`, `timeout: "3s"`)
	broken := edit(t, changed, meshgen.ServiceFile(42), `number: 8080`, `number: 80800`)
	syntax := edit(t, changed, meshgen.ServiceFile(7), `ports: [`, `ports: [[`)
	added := maps.Clone(changed)
	added["services/new.yaml"] = &fstest.MapFile{Data: []byte("services:\n  new:\n    ports: [{name: http, number: 80}]\n")}
	delete(added, meshgen.ServiceFile(3))
	meshEdit := edit(t, added, "mesh.cue", `mtls: "STRICT"`, `mtls: "PERMISSIVE"`)

	c := NewCache()
	for _, step := range []struct {
		name                   string
		fsys                   fstest.MapFS
		parsed, checked, diags int
	}{
		{"cold", base, n + 2, n + 2, 0},
		{"same revision", base, 0, 0, 0},
		{"one service changed", changed, 1, 1, 0},
		{"error in one service", broken, 1, 1, 1},
		{"error fixed", changed, 1, 1, 0},
		{"syntax error", syntax, 1, 0, 4},
		{"syntax fixed", changed, 1, 0, 0},
		{"service added and one removed", added, 1, 1, 0},
		{"mesh block changed", meshEdit, 1, 1, 0},
	} {
		m, diags, st := loadCompare(t, c, step.fsys)
		if st.FilesParsed != step.parsed || st.EntitiesChecked != step.checked || len(diags) != step.diags {
			t.Errorf("%s: parsed %d files, checked %d entities, %d diagnostics; want %d, %d, %d (%v)",
				step.name, st.FilesParsed, st.EntitiesChecked, len(diags), step.parsed, step.checked, step.diags, diags)
		}
		if step.diags == 0 && (m == nil || len(m.Services) < n) {
			t.Fatalf("%s: mesh did not load", step.name)
		}
	}
}

// TestCacheLayouts covers entities written several to a file, one entity
// spread over files, YAML and JSON, guardrails and unknown fields.
func TestCacheLayouts(t *testing.T) {
	fsys := fstest.MapFS{
		"mesh.cue": {Data: []byte("package mesh\n\nmesh: name: \"m\"\nExtra: 1\n")},
		"services/all.cue": {Data: []byte(`package mesh

services: a: {ports: [{name: "http", number: 80}], namespace: "x"}
services: b: {ports: [{name: "http", number: 81}]}
services: c: {ports: [{name: "http", number: 82}]}
`)},
		"services/c-more.cue": {Data: []byte("package mesh\n\nservices: c: namespace: \"y\"\n")},
		"services/d.yaml":     {Data: []byte("services:\n  d:\n    ports: [{name: http, number: 83}]\n")},
		"services/e.json":     {Data: []byte(`{"services": {"e": {"ports": [{"name": "http", "number": 84}]}}}`)},
		"policies/ns.cue": {Data: []byte(`package guardrails

guardrails: "ns": {
	code:     "ACME002"
	severity: "warning"
	message:  "namespace must not be x"
	check: services: [string]: namespace: !="x"
}
`)},
	}
	c := NewCache()
	for _, step := range []struct {
		name            string
		fsys            fstest.MapFS
		parsed, checked int
	}{
		{"cold", fsys, 5, 6},
		// Same length: b and c keep their positions, only a changes.
		{"one of three in a file", edit(t, fsys, "services/all.cue", `namespace: "x"`, `namespace: "z"`), 1, 1},
		// A new line moves b and c: their positions are part of the key.
		{"lines shift", edit(t, fsys, "services/all.cue", `namespace: "x"}`, "namespace: \"x\"}\n"), 1, 2},
		// c has parts in two files: changing one re-checks it.
		{"entity over two files", edit(t, fsys, "services/c-more.cue", `"y"`, `"a"`), 1, 1},
		{"yaml", edit(t, fsys, "services/d.yaml", "83", "85"), 1, 1},
		{"json", edit(t, fsys, "services/e.json", "84", "86"), 1, 1},
		{"conflict across files", edit(t, fsys, "services/all.cue", `number: 82}]`, `number: 82}], namespace: "q"`), 1, 1},
	} {
		// Each step starts from the cold revision's cache.
		if step.name != "cold" {
			loadCompare(t, c, fsys)
		}
		_, _, st := loadCompare(t, c, step.fsys)
		if st.FilesParsed != step.parsed || st.EntitiesChecked != step.checked {
			t.Errorf("%s: parsed %d files, checked %d entities; want %d, %d",
				step.name, st.FilesParsed, st.EntitiesChecked, step.parsed, step.checked)
		}
	}
}

// TestCacheTestdata loads every testdata repository twice through one
// cache: the second load must equal a load without a cache.
func TestCacheTestdata(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/bad/*")
	dirs = append(dirs, "testdata/valid", "testdata/general")
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			fsys := fstest.MapFS{}
			must(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				rel, _ := filepath.Rel(dir, p)
				fsys[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b}
				return err
			}))
			c := NewCache()
			loadCompare(t, c, fsys)
			_, _, st := loadCompare(t, c, fsys)
			if st.FilesParsed != 0 || (!st.General && st.EntitiesChecked != 0) {
				t.Errorf("second load: %+v, want nothing parsed or checked", st)
			}
			if st.General != (dir == "testdata/general") {
				t.Errorf("General = %v", st.General)
			}
		})
	}
}

// TestCacheCallerMutation changes a loaded mesh the way a careless caller
// might; the next load must not see it.
func TestCacheCallerMutation(t *testing.T) {
	fsys := meshgen.Generate(20, meshgen.Options{Seed: 3})
	c := NewCache()
	m, _, _ := loadCompare(t, c, fsys)
	for _, s := range m.Services {
		s.Namespace = "changed"
		s.Ports[0].Number = 1
		s.Versions["v1"].Labels["x"] = "y"
		s.Routes = append(s.Routes[:0], model.Route{Name: "mine"})
	}
	m.Mesh.Name = "changed"
	loadCompare(t, c, fsys)
}

// TestCacheSweep checks the cache holds one revision: after a load of a
// smaller mesh, entries of the bigger one are gone.
func TestCacheSweep(t *testing.T) {
	c := NewCache()
	loadCompare(t, c, meshgen.Generate(50, meshgen.Options{Seed: 1}))
	loadCompare(t, c, meshgen.Generate(5, meshgen.Options{Seed: 2}))
	g := c.current()
	if len(g.files) != 7 || len(g.entities) != 7 {
		t.Errorf("cache holds %d files and %d entities, want 7 and 7", len(g.files), len(g.entities))
	}
}

// TestCacheConcurrent loads two revisions at once through one Cache: every
// load must still equal a load without a cache (run with -race).
func TestCacheConcurrent(t *testing.T) {
	a := meshgen.Generate(30, meshgen.Options{Seed: 1})
	a["policies/rails.cue"] = &fstest.MapFile{Data: []byte(localRails)}
	b := edit(t, a, meshgen.ServiceFile(4), `timeout: "2s"`, `timeout: "9s"`)
	want := map[bool]*model.Mesh{}
	for _, first := range []bool{true, false} {
		m, _, err := Load(context.Background(), map[bool]fstest.MapFS{true: a, false: b}[first], Options{})
		must(t, err)
		want[first] = m
	}
	c := NewCache()
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			first := g%2 == 0
			for i := 0; i < 3; i++ {
				m, _, err := Load(context.Background(), map[bool]fstest.MapFS{true: a, false: b}[first], Options{Cache: c})
				if err == nil {
					if d := cmp.Diff(want[first], m, cmp.AllowUnexported(model.Sources{})); d != "" {
						err = fmt.Errorf("load differs (-cold +cached):\n%s", d)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
