package policies

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	goldentest "github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/schema/model"
)

// brokenBookinfo is bookinfo after a careless pull request: many findings at
// once, to pin the sorted output the CLI prints.
func brokenBookinfo() *model.Mesh {
	m := bookinfo()
	m.Mesh.Guardrails = []string{"require-timeouts", "require-strict-mtls", "no-wildcard-ingres-hosts"}
	at(m, "mesh.guardrails", 8, 14)
	at(m, "mesh.guardrails[2]", 8, 55)

	r := m.Services["reviews"]
	r.Routes[0], r.Routes[1] = r.Routes[1], r.Routes[0]
	r.Routes[0].To[1] = model.Destination{Version: "v4", Weight: 20}
	r.Routes[1].Timeout = 0
	at(m, "services.reviews.routes[0]", 10, 3)
	at(m, "services.reviews.routes[0].to", 12, 7)
	at(m, "services.reviews.routes[0].to[1].version", 12, 40)
	at(m, "services.reviews.routes[1]", 18, 3)
	at(m, "services.reviews.routes[1].match", 19, 5)

	m.Services["ratings"].MTLS = model.MTLSPermissive
	at(m, "services.ratings.mtls", 4, 8)

	m.Services["details"].DependsOn = []string{"googleapi"}
	at(m, "services.details.dependsOn[0]", 6, 14)

	m.Gateways["ingress"].Routes[0].To[0].Port = 9090
	at(m, "gateways.ingress.routes[0].to[0].port", 21, 44)
	return m
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		mesh func() *model.Mesh
	}{
		{"bookinfo", bookinfo},
		{"broken", brokenBookinfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			for _, l := range lines(Check(tc.mesh())) {
				got += l + "\n"
			}
			goldentest.Check(t, filepath.Join("testdata", tc.name+".golden"), []byte(got))
		})
	}
}

// TestDeterministic runs Check repeatedly on fresh copies: Go randomises map
// order per iteration, so any map-order dependence shows up as a difference.
func TestDeterministic(t *testing.T) {
	first := lines(Check(brokenBookinfo()))
	for i := 0; i < 20; i++ {
		if diff := cmp.Diff(first, lines(Check(brokenBookinfo()))); diff != "" {
			t.Fatalf("run %d differs (-first +now):\n%s", i, diff)
		}
	}
}

// TestCheckDoesNotMutate guards purity: Check must leave the model alone,
// since render and the reconciler use the same value afterwards.
func TestCheckDoesNotMutate(t *testing.T) {
	m := brokenBookinfo()
	before := *m.Services["reviews"]
	beforeRoutes := append([]model.Route(nil), before.Routes...)
	Check(m)
	if diff := cmp.Diff(beforeRoutes, m.Services["reviews"].Routes); diff != "" {
		t.Errorf("Check changed reviews' routes:\n%s", diff)
	}
}
