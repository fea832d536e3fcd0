package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// importCase is an Istio-style input of the istioimport package's tests.
func importCase(name string) string {
	return filepath.Join("..", "..", "internal", "istioimport", "testdata", name)
}

// TestImportIstio runs the real command on Bookinfo's Istio YAML (a
// directory), checks its summary and report, and validates the result
// with the real validate command.
func TestImportIstio(t *testing.T) {
	out := filepath.Join(t.TempDir(), "mesh")
	code, stdout, stderr := runCLI(t, "import", "istio", importCase("bookinfo"), "--out", out, "--mesh-name", "bookinfo")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	report := filepath.Join(out, "import-report.txt")
	want := out + ": 7 files from 23 objects, 10 traffic tests\n" +
		report + ": 3 dropped, 4 approximated, 1 skipped, 3 notes, 0 routes without a test\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	// Positions name the input as given on the command line.
	corsLine := filepath.ToSlash(filepath.Join(importCase("bookinfo"), "virtual-services.yaml")) +
		":55:5: VirtualService default/reviews: spec.http[1].corsPolicy: dropped: gitmesh has no CORS policy"
	if !strings.Contains(string(rep), corsLine) {
		t.Errorf("report lacks %q:\n%s", corsLine, rep)
	}
	for _, f := range []string{"mesh.cue", "services/reviews.cue", "gateways/bookinfo-gateway.cue", "tests/generated.cue"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}

	code, vout, verr := runCLI(t, "validate", out)
	if code != exitOK {
		t.Fatalf("validate: exit %d\n%s%s", code, vout, verr)
	}
	if !strings.Contains(vout, "10 traffic tests") {
		t.Errorf("validate ran no generated traffic tests:\n%s", vout)
	}
	if code, rout, rerr := runCLI(t, "render", out, "--list"); code != exitOK || !strings.Contains(rout, "sidecar/default/reviews/v2") {
		t.Fatalf("render --list: exit %d\n%s%s", code, rout, rerr)
	}

	// A second import into the same directory is refused, unless forced.
	code, _, stderr = runCLI(t, "import", "istio", importCase("bookinfo"), "--out", out)
	if code != exitUsage || !strings.Contains(stderr, "directory is not empty (use --force to write into it)") {
		t.Errorf("import into a non-empty --out: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "import", "istio", importCase("bookinfo"), "--out", out, "--force"); code != exitOK {
		t.Errorf("import --force: exit %d: %s", code, stderr)
	}
}

// TestImportIstioNothingConverted: input without a convertible object
// exits 1, writes nothing, and says why on stderr.
func TestImportIstioNothingConverted(t *testing.T) {
	in := filepath.Join(t.TempDir(), "deploy.yml")
	if err := os.WriteFile(in, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "mesh")
	code, _, stderr := runCLI(t, "import", "istio", in, "--out", out)
	if code != exitFindings || !strings.Contains(stderr, `kind "ConfigMap" of "v1" is not converted`) ||
		!strings.Contains(stderr, "could be converted") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was created", out)
	}
	if code, _, _ := runCLI(t, "import", "istio", filepath.Join(t.TempDir(), "nope.yaml"), "--out", out); code != exitUsage {
		t.Errorf("missing input: exit %d, want %d", code, exitUsage)
	}
}

// TestImportIstioStdin reads "-": report lines name the input "stdin".
func TestImportIstioStdin(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(importCase("canary"), "canary.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "mesh")
	var g globalFlags
	root := newRootCmd(&g)
	var stdout, stderr bytes.Buffer
	root.SetIn(bytes.NewReader(in))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"import", "istio", "-", "--out", out})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	rep, err := os.ReadFile(filepath.Join(out, "import-report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rep), "stdin:64:7: VirtualService shop/backend: spec.http[1].match[0].queryParams: dropped:") {
		t.Errorf("report:\n%s", rep)
	}
	if b, err := os.ReadFile(filepath.Join(out, "services", "backend.cue")); err != nil || !strings.Contains(string(b), `hashHeader:   "x-user"`) {
		t.Errorf("services/backend.cue: %v\n%s", err, b)
	}
}
