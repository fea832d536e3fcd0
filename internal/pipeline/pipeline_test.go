package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gitmesh/gitmesh/policies"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

func testdata(t *testing.T, name string) fstest.MapFS {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "render", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{"mesh.cue": {Data: b}}
}

func codes(ds model.Diagnostics, sev model.Severity) []string {
	var out []string
	for _, d := range ds {
		if d.Severity == sev {
			out = append(out, d.Code)
		}
	}
	return out
}

// Without a credentials source (validate, check) the revision passes and
// every credential a gateway names is a warning at the listener that says
// what serve will need.
func TestRunWithoutCredentialsWarnsWhatServeNeeds(t *testing.T) {
	res := Run(context.Background(), Input{Files: testdata(t, "bookinfo.cue")})
	if !res.OK() || res.Err != nil || res.Bundle == nil {
		t.Fatalf("failed at %q: %v %v", res.FailedStep, res.Err, res.Errors())
	}
	var got []string
	for _, d := range res.Diagnostics {
		if d.Code == policies.CodeNeedsServe {
			got = append(got, d.Severity.String()+" "+d.Error())
		}
	}
	want := `warning mesh.cue:173:26: gateways."bookinfo-gateway".listeners[1].tls.credentialName: serve needs credential "bookinfo-credential" in --credentials-dir (DIR/bookinfo-credential/{tls.crt,tls.key})`
	if len(got) != 1 || got[0] != want {
		t.Errorf("GM0601 findings:\n got %q\nwant %q", got, want)
	}
	for _, s := range []string{StepLoad, StepPolicies, StepCredentials, StepRender} {
		if _, ok := res.Timings[s]; !ok {
			t.Errorf("no timing for step %s", s)
		}
	}
}

// With a credentials source that lacks the credential, the run fails at
// render as serve does (GM0804), and the warning is not repeated.
func TestRunWithCredentialsSourceLackingOne(t *testing.T) {
	res := Run(context.Background(), Input{Files: testdata(t, "bookinfo.cue"), Credentials: StaticCredentials{"other": true}})
	if res.FailedStep != StepRender || res.Err != nil || res.Bundle != nil {
		t.Fatalf("failed step %q, err %v, bundle %v", res.FailedStep, res.Err, res.Bundle != nil)
	}
	if got := codes(res.Diagnostics, model.SeverityError); len(got) == 0 || got[0] != render.CodeSecret {
		t.Errorf("errors: %v, want %s", got, render.CodeSecret)
	}
	if got := codes(res.Diagnostics, model.SeverityWarning); strings.Contains(strings.Join(got, " "), policies.CodeNeedsServe) {
		t.Errorf("warned about credentials although a source was given: %v", got)
	}

	ok := Run(context.Background(), Input{Files: testdata(t, "bookinfo.cue"), Credentials: StaticCredentials{"bookinfo-credential": true}})
	if !ok.OK() || !ok.Render.Credentials["bookinfo-credential"] {
		t.Fatalf("with the credential: failed at %q: %v", ok.FailedStep, ok.Errors())
	}
}

type brokenSource struct{}

func (brokenSource) Names() (map[string]bool, error) {
	return nil, errors.New("credentials dir: permission denied")
}

// An unreadable credentials source fails render as transient: the
// revision is not at fault.
func TestRunCredentialsSourceFails(t *testing.T) {
	res := Run(context.Background(), Input{Files: testdata(t, "bookinfo.cue"), Credentials: brokenSource{}})
	if res.FailedStep != StepRender || !res.Transient || res.Err == nil {
		t.Fatalf("failed step %q, transient %v, err %v", res.FailedStep, res.Transient, res.Err)
	}
}

const badRegex = `
package mesh

mesh: name: "test"
services: hello: {
	ports: [{name: "http", number: 8080}]
	versions: v1: endpoints: [{address: "10.0.0.1"}]
	routes: [{
		match: [{path: regex: "^/api/(v1"}]
		to: [{version: "v1"}]
	}]
}
`

// A bad RE2 regex is refused by the loader at the value (render's own
// check stays as the net behind it), so every entry point stops at load.
func TestRunRefusesBadRegexAtLoad(t *testing.T) {
	res := Run(context.Background(), Input{Files: fstest.MapFS{"mesh.cue": {Data: []byte(badRegex)}}})
	if res.FailedStep != StepLoad || res.Bundle != nil {
		t.Fatalf("failed step %q, bundle %v; findings %v", res.FailedStep, res.Bundle != nil, res.Diagnostics)
	}
	errs := res.Errors()
	if len(errs) != 1 || errs[0].Code != "GM0002" || errs[0].Pos.String() != "mesh.cue:9:18" {
		t.Fatalf("load errors: %v", errs)
	}
}

// A policy error stops the run before render; a load error before policies.
func TestRunStopsAtTheFirstFailingStep(t *testing.T) {
	bad := strings.Replace(badRegex, `path: regex: "^/api/(v1"`, `path: prefix: "/"`, 1)
	bad = strings.Replace(bad, `version: "v1"`, `version: "v9"`, 1)
	res := Run(context.Background(), Input{Files: fstest.MapFS{"mesh.cue": {Data: []byte(bad)}}})
	if res.FailedStep != StepPolicies || res.Bundle != nil {
		t.Fatalf("failed step %q: %v", res.FailedStep, res.Diagnostics)
	}
	if _, ok := res.Timings[StepRender]; ok {
		t.Error("render ran after a policy error")
	}
	res = Run(context.Background(), Input{Files: fstest.MapFS{"mesh.cue": {Data: []byte("services: {")}}})
	if res.FailedStep != StepLoad || res.Mesh != nil && !res.Diagnostics.HasErrors() {
		t.Fatalf("failed step %q: %v", res.FailedStep, res.Diagnostics)
	}
}

// Given a loaded model (an endpoint refresh), only the credentials and
// render steps run, with the endpoints given.
func TestRunFromAMesh(t *testing.T) {
	cache := schema.NewCache()
	first := Run(context.Background(), Input{Files: testdata(t, "bookinfo.cue"), Load: schema.Options{Cache: cache}})
	if !first.OK() {
		t.Fatal(first.Errors())
	}
	eps := map[string][]model.Endpoint{"reviews/v1": {{Address: "10.9.9.9"}}}
	res := Run(context.Background(), Input{Mesh: first.Mesh, Endpoints: Fixed(eps), Credentials: StaticCredentials(first.Render.Credentials)})
	if !res.OK() || res.Mesh != first.Mesh || res.Render.Endpoints == nil {
		t.Fatalf("failed at %q: %v", res.FailedStep, res.Errors())
	}
	if _, ok := res.Timings[StepLoad]; ok {
		t.Error("load ran although a mesh was given")
	}
}

// TestRunWithRenderCache: runs through one render.Cache (as the
// reconciler's revisions and endpoint refreshes are) give the bundle a run
// without it gives, and the cache is used.
func TestRunWithRenderCache(t *testing.T) {
	rc := render.NewCache()
	first := Run(context.Background(), Input{Files: testdata(t, "bookinfo.cue"), RenderCache: rc})
	if !first.OK() {
		t.Fatal(first.Errors())
	}
	eps := Fixed(map[string][]model.Endpoint{"reviews/v1": {{Address: "10.9.9.9"}}})
	cached := Run(context.Background(), Input{Mesh: first.Mesh, Endpoints: eps, RenderCache: rc})
	full := Run(context.Background(), Input{Mesh: first.Mesh, Endpoints: eps})
	if !cached.OK() || !full.OK() {
		t.Fatal(cached.Errors(), full.Errors())
	}
	if st := rc.Stats(); st.Reused == 0 {
		t.Errorf("the second run reused nothing: %+v", st)
	}
	cu, fu := cached.Bundle.Update("r"), full.Bundle.Update("r")
	if len(cu.Classes) != len(fu.Classes) {
		t.Fatalf("%d classes, want %d", len(cu.Classes), len(fu.Classes))
	}
	for class, want := range fu.Classes {
		if got := cu.Classes[class]; got == nil || got.Version != want.Version {
			t.Errorf("class %s: content version differs from a run without the cache", class)
		}
	}
}

// TestEmptyRepositoryIsRefused: a revision that deleted every mesh file (or
// kept only the mesh block) fails the policies step with GM0504, in every
// entry point, unless the repository opts in with mesh.allowEmpty.
func TestEmptyRepositoryIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  string // "" means the run passes
	}{
		{"no files", fstest.MapFS{"README.md": {Data: []byte("# mesh\n")}}, ".: services: the mesh has no services"},
		{"mesh block only", fstest.MapFS{"mesh.cue": {Data: []byte("package mesh\n\nmesh: name: \"demo\"\n")}}, "mesh.cue:3:1: services: the mesh has no services"},
		{"allowed", fstest.MapFS{"mesh.cue": {Data: []byte("package mesh\n\nmesh: allowEmpty: true\n")}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Run(context.Background(), Input{Files: tc.files})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if tc.want == "" {
				if !res.OK() {
					t.Fatalf("failed at %s: %s", res.FailedStep, res.Summary())
				}
				if n := len(res.Bundle.Classes()); n != 0 {
					t.Errorf("rendered %d classes from an empty mesh", n)
				}
				return
			}
			if res.FailedStep != StepPolicies || !strings.HasPrefix(res.Summary(), tc.want) {
				t.Fatalf("failed at %q with %q, want policies with %q…", res.FailedStep, res.Summary(), tc.want)
			}
			if got := codes(res.Diagnostics, model.SeverityError); len(got) != 1 || got[0] != policies.CodeEmptyMesh {
				t.Errorf("error codes %v, want [%s]", got, policies.CodeEmptyMesh)
			}
		})
	}
}

// A traffic test that fails fails the revision at render, with a GM1104
// error at the test's position, so serve keeps the last good revision
// exactly when validate and check report it; the bundle is kept for
// check and explain. A passing test is no finding.
func TestTrafficTestsJudgeTheRevision(t *testing.T) {
	mesh := testdata(t, "bookinfo.cue")
	pass := []byte("package mesh\n\ntests: jason: {\n\tfrom: \"sidecar/default/productpage/v1\"\n\trequest: \"GET http://reviews:9080/reviews/1\"\n\theaders: \"end-user\": \"jason\"\n\texpect: to: \"reviews/v2\": 100\n}\n")
	fail := []byte(strings.Replace(string(pass), `"reviews/v2"`, `"reviews/v1"`, 1))

	mesh["tests/routing.cue"] = &fstest.MapFile{Data: pass}
	res := Run(context.Background(), Input{Files: mesh})
	if !res.OK() || len(res.Tests) != 1 || !res.Tests[0].Passed() {
		t.Fatalf("passing test: failed at %q, tests %+v, errors %v", res.FailedStep, res.Tests, res.Errors())
	}

	mesh["tests/routing.cue"] = &fstest.MapFile{Data: fail}
	res = Run(context.Background(), Input{Files: mesh})
	if res.OK() || res.FailedStep != StepRender || res.Bundle == nil {
		t.Fatalf("failing test: OK %v, failed step %q, bundle %v", res.OK(), res.FailedStep, res.Bundle != nil)
	}
	want := `tests/routing.cue:3:8: tests.jason: expected reviews/v1 100%, got reviews/v2 100%`
	if errs := res.Errors(); len(errs) != 1 || errs[0].Code != policies.CodeTestFails || errs[0].Error() != want {
		t.Errorf("errors: %v, want one GM1104 %q", errs, want)
	}

	// A re-render of a judged revision (serve's endpoint refresh) does not
	// run them again.
	res = Run(context.Background(), Input{Mesh: res.Mesh})
	if !res.OK() || res.Tests != nil {
		t.Errorf("re-render: failed at %q, tests %v", res.FailedStep, res.Tests)
	}
}
