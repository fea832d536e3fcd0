package policies_test

import (
	"fmt"

	"github.com/gitmesh/gitmesh/policies"
	"github.com/gitmesh/gitmesh/schema/model"
)

func ExampleCheck() {
	m := &model.Mesh{
		Mesh: model.MeshConfig{TrustDomain: "cluster.local", ClusterDomain: "cluster.local", MTLS: model.MTLSStrict},
		Services: map[string]*model.Service{
			"reviews": {
				Name: "reviews", Namespace: "default", ServiceAccount: "reviews", Proxy: model.ProxySidecar,
				Ports:     []model.Port{{Name: "http", Number: 9080, Protocol: model.ProtocolHTTP, TargetPort: 9080}},
				Versions:  map[string]*model.Version{"v1": {Name: "v1"}, "v2": {Name: "v2"}},
				Discovery: "kubernetes", DependsOn: []string{"*"},
				Routes: []model.Route{{Name: "canary", To: []model.Destination{
					{Version: "v1", Weight: 90}, {Version: "v3", Weight: 20},
				}}},
			},
		},
		Sources: model.NewSources(),
	}
	m.Sources.Set("services.reviews.routes[0].to", model.Pos{File: "services/reviews.cue", Line: 12, Col: 3})
	m.Sources.Set("services.reviews.routes[0].to[1]", model.Pos{File: "services/reviews.cue", Line: 14, Col: 5})
	for _, d := range policies.Check(m) {
		fmt.Println(d.Code, d.Severity, d.Error())
	}
	// Output:
	// GM0501 info -: services.reviews: service "reviews" is not reached by any route, gateway or dependsOn
	// GM0201 error services/reviews.cue:12:3: services.reviews.routes[0].to: weights sum to 110, want 100
	// GM0102 error services/reviews.cue:14:5: services.reviews.routes[0].to[1].version: unknown version "v3" of service "reviews"
}

func ExamplePacks() {
	for _, p := range policies.Packs() {
		fmt.Printf("%s %s\n", p.Code, p.Name)
	}
	// Output:
	// GM1001 require-strict-mtls
	// GM1002 require-timeouts
	// GM1003 require-retries-budget
	// GM1004 no-wildcard-ingress-hosts
	// GM1005 egress-through-gateway
	// GM1006 require-authorization
}
