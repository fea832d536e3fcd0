package traffic_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

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

func TestBookinfoTraceDev(t *testing.T) {
	_, cfgs, w := loadExample(t, "bookinfo")
	for _, c := range []struct {
		from, req string
		h         map[string]string
	}{
		{"sidecar/default/productpage/v1", "GET http://reviews:9080/reviews/1", map[string]string{"end-user": "jason"}},
		{"sidecar/default/reviews/v2", "GET http://ratings:9080/ratings/1", nil},
		{"ingress/bookinfo-gateway", "GET http://bookinfo.example.com:8080/productpage", nil},
		{"sidecar/default/details/v1", "GET http://www.googleapis.com/books/v1/volumes", nil},
	} {
		o, err := traffic.Evaluate(cfgs, w, c.from, request(t, c.req, c.h))
		if err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + traffic.Text(o))
	}
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
