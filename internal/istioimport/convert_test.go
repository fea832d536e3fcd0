package istioimport

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue/parser"

	"github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// cases are the Istio-style inputs under testdata/, one directory each.
func cases(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d cases under testdata", len(out))
	}
	return out
}

// convertCase converts testdata/NAME/*.yaml, naming files as the report
// shows them: relative to the case directory.
func convertCase(t *testing.T, name string) *Result {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", name, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no YAML in testdata/%s: %v", name, err)
	}
	var srcs []Source
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Name: filepath.Base(p), Data: b})
	}
	return Convert(srcs, Options{MeshName: name})
}

// archive is the repository and the report as one txtar-style text, the
// golden form: a reviewer reads one file per case.
func archive(res *Result) []byte {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(res.Files)) {
		b.WriteString("-- " + p + " --\n")
		b.Write(res.Files[p])
	}
	b.WriteString("-- import-report.txt --\n")
	b.Write(res.Report.Text())
	return []byte(b.String())
}

// writeRepo writes the repository to a new directory; withTests false
// leaves tests/ out.
func writeRepo(t *testing.T, res *Result, withTests bool) string {
	t.Helper()
	dir := t.TempDir()
	for p, b := range res.Files {
		if !withTests && strings.HasPrefix(p, "tests/") {
			continue
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// validateRepo runs the real pipeline (schema, policies, render and its
// Envoy-strict check) over dir, as `gitmesh validate` does, and fails on
// any error finding.
func validateRepo(t *testing.T, dir string) *pipeline.Result {
	t.Helper()
	res := pipeline.Run(context.Background(), pipeline.Input{Dir: dir, Load: schema.Options{}})
	if res.Err != nil {
		t.Fatalf("pipeline: %v", res.Err)
	}
	for _, d := range res.Diagnostics {
		if d.Severity != model.SeverityInfo {
			t.Logf("%s %s", d.Severity, d.Error())
		}
	}
	if !res.OK() || res.Bundle == nil {
		t.Fatalf("the imported repository fails at %q:\n%s", res.FailedStep, res.Summary())
	}
	return res
}

// TestImportCases converts each case and compares the repository and the
// report with testdata/NAME.golden (go test -update rewrites them); the
// repository must pass validate and render, and the generated tests must
// be CUE.
func TestImportCases(t *testing.T) {
	for _, name := range cases(t) {
		t.Run(name, func(t *testing.T) {
			res := convertCase(t, name)
			golden.Check(t, filepath.Join("testdata", name+".golden"), archive(res))
			if res.Converted == 0 {
				t.Fatal("nothing converted")
			}
			validateRepo(t, writeRepo(t, res, false))
			if b, ok := res.Files["tests/generated.cue"]; ok {
				if _, err := parser.ParseFile("tests/generated.cue", b); err != nil {
					t.Fatalf("generated tests do not parse: %v", err)
				}
			} else if res.Tests > 0 {
				t.Fatal("tests counted but no tests/generated.cue")
			}
		})
	}
}

func TestImportedTestsPass(t *testing.T) {
	for _, name := range cases(t) {
		t.Run(name, func(t *testing.T) {
			res := convertCase(t, name)
			if res.Tests == 0 {
				t.Fatal("no tests generated")
			}
			validateRepo(t, writeRepo(t, res, true))
		})
	}
}
