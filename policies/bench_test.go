package policies

import (
	"fmt"
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// largeMesh builds a mesh of n services, each calling the next five (so
// dependsOn averages 5), each with a header route and a 90/10 canary split,
// one in ten with authorization, and an ingress gateway routing to one in a
// hundred. Positions are recorded for every service, route and destination,
// as the loader would.
func largeMesh(n int) *model.Mesh {
	m := &model.Mesh{
		Mesh: model.MeshConfig{Name: "large", TrustDomain: "cluster.local", ClusterDomain: "cluster.local",
			MTLS: model.MTLSStrict, OutboundTrafficPolicy: "REGISTRY_ONLY",
			Guardrails: []string{"require-strict-mtls", "require-timeouts", "require-retries-budget"}},
		Services: make(map[string]*model.Service, n),
		Gateways: map[string]*model.Gateway{},
		Sources:  model.NewSources(),
	}
	name := func(i int) string { return fmt.Sprintf("svc-%05d", i%n) }
	ingress := &model.Gateway{Name: "ingress", Kind: model.GatewayIngress, Namespace: "edge", ServiceAccount: "ingress",
		Listeners: []model.GatewayListener{{Name: "http-80", Port: 80, Protocol: model.ProtocolHTTP, Hosts: []string{"large.example.com"}}}}
	m.Gateways["ingress"] = ingress
	for i := 0; i < n; i++ {
		s := &model.Service{
			Name: name(i), Namespace: fmt.Sprintf("ns-%02d", i%50), ServiceAccount: name(i),
			Proxy: model.ProxySidecar, Ports: []model.Port{httpPort(8080)}, Versions: versions("v1", "v2"),
			Discovery: "static",
		}
		for d := 1; d <= 5; d++ {
			s.DependsOn = append(s.DependsOn, name(i+d))
		}
		s.Routes = []model.Route{
			{Name: "beta", Match: []model.Match{{Headers: map[string]model.StringMatch{"x-beta": {Exact: "1"}}}},
				To: []model.Destination{{Version: "v2", Weight: 100}}, Timeout: 3 * model.Second},
			{Name: "canary", To: []model.Destination{{Version: "v1", Weight: 90}, {Version: "v2", Weight: 10}},
				Timeout: 3 * model.Second, Retries: &model.Retries{Attempts: 2, PerTryTimeout: model.Second}},
		}
		if i%10 == 0 {
			s.Authorization = allowFrom(model.Source{Namespace: "ns-00"}, model.Source{Principal: "cluster.local/ns/*"})
		}
		if i%100 == 0 {
			ingress.Routes = append(ingress.Routes, model.Route{Name: "to-" + name(i),
				Match: []model.Match{{Path: &model.StringMatch{Prefix: "/" + name(i) + "/"}}},
				To:    []model.Destination{{Service: name(i), Weight: 100}}, Timeout: 5 * model.Second})
		}
		m.Services[s.Name] = s
		base := model.Path("services", s.Name)
		file := "services/" + s.Name + ".cue"
		m.Sources.Set(base, model.Pos{File: file, Line: 1, Col: 1})
		for r := range s.Routes {
			rp := model.Index(base+".routes", r)
			m.Sources.Set(rp, model.Pos{File: file, Line: 10 + 10*r, Col: 3})
			m.Sources.Set(rp+".to", model.Pos{File: file, Line: 11 + 10*r, Col: 5})
		}
	}
	return m
}

func TestLargeMeshClean(t *testing.T) {
	if ds := Check(largeMesh(1000)); len(ds) != 0 {
		t.Fatalf("want no findings, got %d, first: %v", len(ds), ds[0])
	}
}

// BenchmarkCheck measures Check over 10,000 services (dependsOn 5 each).
func BenchmarkCheck(b *testing.B) {
	m := largeMesh(10000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ds := Check(m); len(ds) != 0 {
			b.Fatalf("unexpected findings: %v", ds[0])
		}
	}
}

// BenchmarkCheckFindings measures the cost of reporting: every canary split
// is broken, so Check returns 10,000 findings to sort.
func BenchmarkCheckFindings(b *testing.B) {
	m := largeMesh(10000)
	for _, s := range m.Services {
		s.Routes[1].To[1].Weight = 20
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ds := Check(m); len(ds) != 10000 {
			b.Fatalf("want 10000 findings, got %d", len(ds))
		}
	}
}
