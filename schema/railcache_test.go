package schema

import (
	"maps"
	"testing"
	"testing/fstest"

	"github.com/gitmesh/gitmesh/internal/meshgen"
)

// localRails can be checked one entity at a time.
const localRails = `package guardrails

guardrails: "version-label": {
	code:    "ACME001"
	message: "every version needs a version label"
	check: services: [string]: versions: [string]: labels: version!: string
}
guardrails: "short-timeouts": {
	code:     "ACME002"
	severity: "warning"
	message:  "pay services time out within 2s"
	check: services: [=~"^svc0001"]: routes: [...{timeout: "2s"}]
}
guardrails: "strict": {
	code:    "ACME003"
	message: "the mesh must be STRICT"
	check: mesh: mtls: "STRICT"
	check: gateways: [string]: kind: "ingress"
}
`

// wholeRails names one service: it must see the whole mesh.
const wholeRails = `package guardrails

guardrails: "svc1-ns": {
	code:    "ACME004"
	message: "svc00001 lives in default"
	check: services: svc00001: namespace: "default"
	check: services: [string]: proxy: "sidecar" | "proxyless"
}
`

func TestCacheGuardrails(t *testing.T) {
	const n = 200
	for _, tc := range []struct {
		name  string
		rails string
		whole bool
	}{
		{"by entity", localRails, false},
		{"whole mesh", wholeRails, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := meshgen.Generate(n, meshgen.Options{Seed: 1})
			base["policies/rails.cue"] = &fstest.MapFile{Data: []byte(tc.rails)}
			slow := edit(t, base, meshgen.ServiceFile(12), `timeout: "2s"`, `timeout: "5s"`)
			unlabelled := edit(t, slow, meshgen.ServiceFile(150), `labels: version: "v2"`, `labels: team: "a"`)
			permissive := edit(t, unlabelled, "mesh.cue", `"STRICT"`, `"PERMISSIVE"`)
			moved := edit(t, permissive, meshgen.ServiceFile(1), "ports:", "namespace: \"other\"\n\tports:")
			railsChanged := maps.Clone(moved)
			railsChanged["policies/rails.cue"] = &fstest.MapFile{Data: []byte(tc.rails + "\n")}
			c := NewCache()
			for _, step := range []struct {
				name           string
				fsys           fstest.MapFS
				checked, diags int
			}{
				{"cold", base, n + 1, 0},
				{"timeout", slow, 1, 1},
				{"label", unlabelled, 1, 2},
				{"mesh", permissive, 0, 3},
				{"namespace", moved, 1, 3},
				{"rails changed", railsChanged, n + 1, 3},
			} {
				_, diags, st := loadCompare(t, c, step.fsys)
				if st.RailsWhole != tc.whole {
					t.Errorf("%s: RailsWhole = %v", step.name, st.RailsWhole)
				}
				if !tc.whole && (st.RailsChecked != step.checked || len(diags) != step.diags) {
					t.Errorf("%s: guardrails ran on %d entities, %d findings; want %d, %d: %v",
						step.name, st.RailsChecked, len(diags), step.checked, step.diags, diags)
				}
			}
		})
	}
}

func TestRailsByEntity(t *testing.T) {
	for _, tc := range []struct {
		check string
		want  bool
	}{
		{`check: services: [string]: versions: [string]: labels: owner!: string`, true},
		{`check: services: [=~"^pay-"]: mtls?: "STRICT" | "PERMISSIVE"`, true},
		{`check: {mesh: tracing!: _, external: [string]: ports: [...{number: <30000}]}`, true},
		{`check: services: reviews: mtls: "STRICT"`, false},
		{`check: services: [string]: namespace: services.reviews.namespace`, false},
		{`check: services: [string]: namespace: strings.HasPrefix("team-")`, false},
		{`check: services: [N=string]: serviceAccount: N`, false},
		{`check: services: [string]: {string: 1}`, true},
		{`check: services: [string]: {string: 1, x: string}`, false},
		{`check: services: [string]: {int: 1, ports: [...{number: int}]}`, false},
		{`check: services: {[string]: _} & {}`, false},
		{`check: services!: _`, false},
		{`check: foo: [string]: _`, false},
		{`check: close({services: [string]: _})`, false},
		{`check: #X, #X: services: [string]: _`, false},
	} {
		src := "package guardrails\n\nguardrails: x: {\n\tcode: \"A001\"\n\tmessage: \"m\"\n\t" + tc.check + "\n}\n"
		if got := railsByEntity([]repoFile{{path: "policies/x.cue", src: []byte(src)}}); got != tc.want {
			t.Errorf("%s: railsByEntity = %v, want %v", tc.check, got, tc.want)
		}
	}
}

func TestEntityPrefix(t *testing.T) {
	for path, want := range map[string]string{
		"services.reviews.versions.v1.labels.owner": "services.reviews",
		"services.reviews":                          "services.reviews",
		"services.reviews.routes[0].timeout":        "services.reviews",
		`extensions."a.b".config`:                   `extensions."a.b"`,
		"mesh.mtls":                                 "mesh.mtls",
		"mesh":                                      "",
		"":                                          "",
	} {
		if got := entityPrefix(path); got != want {
			t.Errorf("entityPrefix(%q) = %q, want %q", path, got, want)
		}
	}
}
