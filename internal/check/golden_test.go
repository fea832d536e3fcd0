package check

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goldentest "github.com/gitmesh/gitmesh/internal/golden"
)

// goldenScenarios build the pull requests whose output in every format is
// kept under testdata: "mixed" has a weight change, an RBAC change, a new
// warning, a pre-existing warning and a suppressed one; "broken" has a new
// error and so no impact.
var goldenScenarios = []struct {
	name  string
	setup func(t *testing.T, r *testRepo) (base string)
	// tests keeps the example's traffic tests (bookinfoWithTests).
	tests bool
}{
	{"mixed", func(t *testing.T, r *testRepo) string {
		r.branch(t, "golden-base", "main")
		r.edit(t, "services/details.cue", `timeout: "5s"`, `timeout: "2s"`)
		r.commit(t, "details: tighter timeout")
		r.branch(t, "pr", "golden-base")
		r.edit(t, "services/details.cue", "package mesh\n", "package mesh\n\n// Book details.\n")
		r.edit(t, "services/details.cue", `from: [{service: "productpage"}]`, `from: [{service: "reviews"}]`)
		r.edit(t, "services/reviews.cue", `{version: "v1", weight: 50}`, `{version: "v1", weight: 80}`)
		r.edit(t, "services/reviews.cue", `{version: "v3", weight: 50}`, `{version: "v3", weight: 20}`)
		r.edit(t, "services/reviews.cue", `timeout: "10s"`, `timeout: "2s"`)
		r.edit(t, "services/reviews.cue", `from: [{service: "productpage"}]`, `from: [{service: "productpage"}, {service: "ratings"}]`)
		r.write(t, SuppressionsFile, "suppressions:\n  - code: GM0403\n    path: services.details\n    reason: productpage reads details from the cache from now on\n")
		return "golden-base"
	}, false},
	{"broken", func(t *testing.T, r *testRepo) string {
		r.branch(t, "pr", "main")
		r.edit(t, "services/reviews.cue", `to: [{version: "v2"}]`, `to: [{version: "v9"}]`)
		return "main"
	}, false},
	// "traffic" keeps the example's traffic tests: jason moves to v3 with
	// his test (an outcome change that passes), the canary goes 100/0
	// (a test that passed now fails: a new error).
	{"traffic", func(t *testing.T, r *testRepo) string {
		r.branch(t, "pr", "main")
		r.edit(t, "services/reviews.cue", `to: [{version: "v2"}]`, `to: [{version: "v3"}]`)
		r.edit(t, "tests/routing.cue", `to: "reviews/v2": 100`, `to: "reviews/v3": 100`)
		r.edit(t, "services/reviews.cue", `{version: "v1", weight: 50}`, `{version: "v1", weight: 100}`)
		r.edit(t, "services/reviews.cue", `{version: "v3", weight: 50}`, `{version: "v3", weight: 0}`)
		return "main"
	}, true},
}

// goldenReport runs a scenario and fixes the commit hashes, which depend on
// the example's bytes, so the goldens change only when output does.
func goldenReport(t *testing.T, name string) *Report {
	t.Helper()
	for _, sc := range goldenScenarios {
		if sc.name != name {
			continue
		}
		files := bookinfo()
		if sc.tests {
			files = bookinfoWithTests()
		}
		r := newTestRepo(t, files)
		base := sc.setup(t, r)
		rep, err := Run(context.Background(), Options{Dir: r.meshDir(), Base: base})
		if err != nil {
			t.Fatal(err)
		}
		rep.Base.Commit = strings.Repeat("b", 40)
		rep.Head.Commit = strings.Repeat("a", 40)
		return rep
	}
	t.Fatalf("no scenario %q", name)
	return nil
}

func TestGolden(t *testing.T) {
	for _, sc := range goldenScenarios {
		rep := goldenReport(t, sc.name)
		for _, format := range Formats {
			t.Run(sc.name+"."+format, func(t *testing.T) {
				var b bytes.Buffer
				if err := Write(&b, rep, format, WriteOptions{}); err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", sc.name+"."+format+".golden")
				goldentest.Check(t, golden, b.Bytes())
				if strings.Contains(b.String(), os.TempDir()) {
					t.Errorf("%s output names a temp dir", golden)
				}
			})
		}
	}
}

// TestSARIFRequiredFields reads the SARIF output back into the fields the
// 2.1.0 specification requires (and code scanning needs) and asserts them.
func TestSARIFRequiredFields(t *testing.T) {
	rep := goldenReport(t, "mixed")
	var b bytes.Buffer
	if err := Write(&b, rep, "sarif", WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version *string `json:"version"`
		Schema  *string `json:"$schema"`
		Runs    []struct {
			Tool *struct {
				Driver *struct {
					Name           *string `json:"name"`
					InformationURI *string `json:"informationUri"`
					Rules          []struct {
						ID *string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID  *string `json:"ruleId"`
				Level   *string `json:"level"`
				Message *struct {
					Text *string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation *struct {
						ArtifactLocation *struct {
							URI *string `json:"uri"`
						} `json:"artifactLocation"`
						Region *struct {
							StartLine   *int `json:"startLine"`
							StartColumn *int `json:"startColumn"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				Suppressions []struct {
					Kind          *string `json:"kind"`
					Justification *string `json:"justification"`
				} `json:"suppressions"`
			} `json:"results"`
		} `json:"runs"`
	}
	dec := json.NewDecoder(&b)
	if err := dec.Decode(&log); err != nil {
		t.Fatal(err)
	}
	if log.Version == nil || *log.Version != "2.1.0" || log.Schema == nil || !strings.Contains(*log.Schema, "sarif-2.1.0") {
		t.Fatalf("version/$schema missing or wrong")
	}
	if len(log.Runs) != 1 || log.Runs[0].Tool == nil || log.Runs[0].Tool.Driver == nil {
		t.Fatalf("runs[0].tool.driver missing")
	}
	d := log.Runs[0].Tool.Driver
	if d.Name == nil || *d.Name != "gitmesh" || d.InformationURI == nil || !strings.HasPrefix(*d.InformationURI, "https://") {
		t.Errorf("driver name/informationUri missing")
	}
	rules := map[string]bool{}
	for _, r := range d.Rules {
		if r.ID == nil {
			t.Fatal("rule without id")
		}
		rules[*r.ID] = true
	}
	levels := map[string]bool{"error": true, "warning": true, "note": true, "none": true}
	suppressed := 0
	if len(log.Runs[0].Results) != len(rep.Findings) || len(rep.Findings) == 0 {
		t.Fatalf("%d results for %d findings", len(log.Runs[0].Results), len(rep.Findings))
	}
	for i, res := range log.Runs[0].Results {
		if res.RuleID == nil || !rules[*res.RuleID] {
			t.Errorf("result %d: ruleId missing or not among rules", i)
		}
		if res.Level == nil || !levels[*res.Level] || res.Message == nil || res.Message.Text == nil || *res.Message.Text == "" {
			t.Errorf("result %d: level or message.text missing", i)
		}
		if len(res.Locations) != 1 || res.Locations[0].PhysicalLocation == nil ||
			res.Locations[0].PhysicalLocation.ArtifactLocation == nil || res.Locations[0].PhysicalLocation.ArtifactLocation.URI == nil {
			t.Fatalf("result %d: physicalLocation.artifactLocation.uri missing", i)
		}
		pl := res.Locations[0].PhysicalLocation
		if uri := *pl.ArtifactLocation.URI; !strings.HasPrefix(uri, meshSub+"/") || filepath.IsAbs(uri) {
			t.Errorf("result %d: uri %q is not repository-relative", i, uri)
		}
		if pl.Region == nil || pl.Region.StartLine == nil || *pl.Region.StartLine < 1 || pl.Region.StartColumn == nil {
			t.Errorf("result %d: region.startLine/startColumn missing", i)
		}
		for _, s := range res.Suppressions {
			if s.Kind == nil || s.Justification == nil || *s.Justification == "" {
				t.Errorf("result %d: suppression without kind or justification", i)
			}
			suppressed++
		}
	}
	if suppressed != rep.Counts.Suppressed || suppressed == 0 {
		t.Errorf("%d SARIF suppressions, want %d", suppressed, rep.Counts.Suppressed)
	}
}

// TestGitHubAnnotations: the broken-reference annotation points at the
// repository-relative file and the line of the bad version.
func TestGitHubAnnotations(t *testing.T) {
	rep := goldenReport(t, "broken")
	var b bytes.Buffer
	if err := Write(&b, rep, "github", WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(b.String(), "\n", 2)[0]
	want := `::error file=mesh/services/reviews.cue,line=26,col=10,title=GM0102::services.reviews.routes[0].to[0].version: unknown version "v9" of service "reviews"`
	if first != want {
		t.Errorf("annotation\n got %s\nwant %s", first, want)
	}
	for _, tc := range []struct{ in, data, prop string }{
		{"a%b\nc\rd", "a%25b%0Ac%0Dd", "a%25b%0Ac%0Dd"},
		{"x:y,z", "x:y,z", "x%3Ay%2Cz"},
	} {
		if got := ghData(tc.in); got != tc.data {
			t.Errorf("ghData(%q) = %q, want %q", tc.in, got, tc.data)
		}
		if got := ghProperty(tc.in); got != tc.prop {
			t.Errorf("ghProperty(%q) = %q, want %q", tc.in, got, tc.prop)
		}
	}
}
