package schema

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	goldentest "github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/schema/model"
)

// TestLoadValid loads testdata/valid (CUE, YAML and JSON files, a gateway,
// an external service, an extension and a guardrail it satisfies) through
// both paths and compares with testdata/valid.golden.json, which shows
// every default the schema fills in.
func TestLoadValid(t *testing.T) {
	var golden []byte
	for _, plain := range []bool{true, false} {
		m, diags, err := LoadDir(context.Background(), filepath.Join("testdata", "valid"), pathOptions(plain))
		if err != nil || len(diags) > 0 {
			t.Fatalf("plain=%v: %v %v", plain, err, diags)
		}
		got, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		if golden == nil {
			golden = got
		} else if d := cmp.Diff(string(golden), string(got)); d != "" {
			t.Fatalf("general path differs from plain path (-plain +general):\n%s", d)
		}
		checkNames(t, m)
		checkSources(t, m.Sources)
	}
	goldentest.Check(t, filepath.Join("testdata", "valid.golden.json"), golden)
}

func checkNames(t *testing.T, m *model.Mesh) {
	t.Helper()
	r := m.Services["reviews"]
	if r.Name != "reviews" || r.Versions["v2"].Name != "v2" || m.Gateways["bookinfo-gateway"].Name != "bookinfo-gateway" ||
		m.External["httpbin"].Name != "httpbin" || m.Extensions["rate-limit"].Name != "rate-limit" {
		t.Errorf("names not filled from map keys")
	}
	if r.Routes[0].Name != "route-0" || r.Routes[1].Name != "canary" {
		t.Errorf("route names %q, %q; want route-0, canary", r.Routes[0].Name, r.Routes[1].Name)
	}
	if r.Routes[1].Timeout != 1500*model.Millisecond || r.Routes[1].Retries.PerTryTimeout != 250*model.Millisecond {
		t.Errorf("durations %v, %v", r.Routes[1].Timeout, r.Routes[1].Retries.PerTryTimeout)
	}
}

func checkSources(t *testing.T, src *model.Sources) {
	t.Helper()
	for path, want := range map[string]string{
		"services.reviews":                            "services/reviews.cue:3:11",
		"services.reviews.ports[0].number":            "services/reviews.cue:4:25",
		"services.reviews.routes[1].to[1].weight":     "services/reviews.cue:18:53",
		"services.reviews.routes[1].to[1].weight.xyz": "services/reviews.cue:18:53",
		// Defaulted: the nearest written parent.
		"services.reviews.namespace":                        "services/reviews.cue:3:11",
		"services.ratings.ports[0].targetPort":              "services/ratings.yaml:8:9",
		"services.productpage.dependsOn[1]":                 "services/productpage.json:6:32",
		`gateways."bookinfo-gateway".listeners[1].tls.mode`: "mesh.cue:16:9",
		`extensions."rate-limit".config.alpha.burst`:        "mesh.cue:34:42",
	} {
		if got := src.Lookup(path).String(); got != want {
			t.Errorf("Sources.Lookup(%s) = %s, want %s", path, got, want)
		}
	}
}

// TestLoadGeneral loads a repository that uses templates, references, a
// comprehension and an import, which only the general path can evaluate.
func TestLoadGeneral(t *testing.T) {
	m, diags, err := LoadDir(context.Background(), filepath.Join("testdata", "general"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"GM0002 error services/cart.cue:11:2: services.checkout.proxi: field not allowed"}
	if d := cmp.Diff(want, diagLines(diags)); d != "" {
		t.Errorf("diagnostics (-want +got):\n%s", d)
	}
	cart := m.Services["cart"]
	if m.Mesh.Name != "shop" || cart == nil || cart.Namespace != "shop" || cart.Versions["v1"].Labels["app"] != "cart" {
		t.Fatalf("templates not applied: %+v", cart)
	}
	if d := cmp.Diff([]string{"checkout"}, cart.DependsOn); d != "" {
		t.Errorf("dependsOn (-want +got):\n%s", d)
	}
}
