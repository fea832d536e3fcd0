package traffic_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/render/traffic"
	"github.com/gitmesh/gitmesh/schema/model"
)

// loadExample runs an example repository through the one pipeline, as
// validate does, and returns what the evaluator needs.
func loadExample(t *testing.T, name string) (*pipeline.Result, traffic.Configs, *traffic.World) {
	t.Helper()
	res := pipeline.Run(context.Background(), pipeline.Input{Dir: filepath.Join("..", "..", "examples", name)})
	if res.Bundle == nil {
		t.Fatalf("%s: failed at %s: %v %v", name, res.FailedStep, res.Err, res.Errors())
	}
	return res, traffic.BundleConfigs(res.Bundle), traffic.NewWorld(res.Mesh, nil, nil)
}

func request(t *testing.T, s string, headers map[string]string) traffic.Request {
	t.Helper()
	r, err := model.ParseRequest(s)
	if err != nil {
		t.Fatal(err)
	}
	return traffic.Request{Request: r, Headers: headers}
}

// TestEveryCaseEvaluates sends a request from every class of every render
// golden case and example to every port of every service and external
// host: the evaluator must model everything render emits (an error means
// a config shape it does not understand), and no request may panic.
func TestEveryCaseEvaluates(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("..", "testdata", "*.cue"))
	if err != nil {
		t.Fatal(err)
	}
	var inputs []pipeline.Input
	var names []string
	for _, c := range cases {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, pipeline.Input{Files: fstest.MapFS{"mesh.cue": {Data: b}}})
		names = append(names, filepath.Base(c))
	}
	for _, ex := range []string{"bookinfo", "minimal", "grpc-canary"} {
		inputs = append(inputs, pipeline.Input{Dir: filepath.Join("..", "..", "examples", ex)})
		names = append(names, ex)
	}
	evaluated := 0
	for i, in := range inputs {
		res := pipeline.Run(context.Background(), in)
		if res.Bundle == nil {
			continue // cases that do not render are render's to test
		}
		m := res.Mesh
		cfgs, w := traffic.BundleConfigs(res.Bundle), traffic.NewWorld(m, nil, nil)
		var reqs []string
		for _, sn := range m.ServiceNames() {
			s := m.Services[sn]
			for _, p := range s.Ports {
				switch {
				case p.Protocol.IsHTTP() && s.Proxy == model.ProxyProxyless:
					reqs = append(reqs, fmt.Sprintf("POST grpc://%s:%d/pkg.Svc/Method", m.Host(s), p.Number))
				case p.Protocol.IsHTTP():
					reqs = append(reqs, fmt.Sprintf("GET http://%s:%d/", m.Host(s), p.Number))
				default:
					reqs = append(reqs, fmt.Sprintf("tcp://%s:%d", m.Host(s), p.Number))
				}
			}
		}
		for _, xn := range m.ExternalNames() {
			x := m.External[xn]
			for _, p := range x.Ports {
				if p.Protocol.IsHTTP() {
					reqs = append(reqs, fmt.Sprintf("GET http://%s:%d/", x.Hosts[0], p.Number))
				} else {
					reqs = append(reqs, fmt.Sprintf("tcp://%s:%d", x.Hosts[0], p.Number))
				}
			}
		}
		for _, class := range res.Bundle.Classes() {
			for _, r := range reqs {
				if _, err := traffic.Evaluate(cfgs, w, class, request(t, r, nil)); err != nil {
					t.Errorf("%s: %s from %s: %v", names[i], r, class, err)
				}
				evaluated++
			}
		}
	}
	if evaluated < 100 {
		t.Errorf("only %d requests evaluated: the cases did not render", evaluated)
	}
}

// TestRenderBugFailsATest: the evaluator reads what render emitted, not the
// CUE rules, so a rendered route pointing at the wrong cluster (a render
// bug simulated on a copy of productpage's config) fails jason's test
// although the model still says v2.
func TestRenderBugFailsATest(t *testing.T) {
	res, cfgs, w := loadExample(t, "bookinfo")
	const pp = "sidecar/default/productpage/v1"
	broken := traffic.NewConfig()
	orig := cfgs(pp)
	for _, n := range res.Bundle.Proxy(pp).Names(resource.ListenerType) {
		broken.Add(orig.Listeners[n])
	}
	for _, c := range orig.Clusters {
		broken.Add(c)
	}
	for _, e := range orig.Endpoints {
		broken.Add(e)
	}
	for _, rc := range orig.Routes {
		rc = proto.Clone(rc).(*routev3.RouteConfiguration)
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if r.GetName() == "jason" {
					r.GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "outbound|9080|v3|reviews.default.svc.cluster.local"}
				}
			}
		}
		broken.Add(rc)
	}
	bugged := func(class string) *traffic.Config {
		if class == pp {
			return broken
		}
		return cfgs(class)
	}
	jason := res.Mesh.Tests["jason-sees-v2"]
	req := request(t, jason.Request, jason.Headers)
	for name, c := range map[string]traffic.Configs{"rendered": cfgs, "bugged": bugged} {
		o, err := traffic.Evaluate(c, w, pp, req)
		if err != nil {
			t.Fatal(err)
		}
		problems := traffic.Check(jason.Expect, o)
		if (name == "rendered") != (len(problems) == 0) {
			t.Errorf("%s config: problems %q\n%s", name, problems, traffic.Text(o))
		}
	}
}

// TestExampleTestsPass: every example's declared traffic tests pass on its
// rendered config (validate runs them too; this names the failing one).
func TestExampleTestsPass(t *testing.T) {
	for _, ex := range []string{"bookinfo", "minimal", "grpc-canary"} {
		res, _, _ := loadExample(t, ex)
		for _, r := range res.Tests {
			if !r.Passed() {
				t.Errorf("%s: tests.%s: %s", ex, r.Name, r.Message())
			}
		}
	}
}
