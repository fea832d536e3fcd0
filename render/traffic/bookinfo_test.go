package traffic_test

import (
	"context"
	"path/filepath"
	"testing"

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
