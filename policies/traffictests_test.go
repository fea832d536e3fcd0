package policies

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

func TestTrafficTests(t *testing.T) {
	test := func(m *model.Mesh, from, req string, to ...string) {
		x := model.TrafficExpect{To: map[string]float64{}}
		for _, d := range to {
			x.To[d] = 100
		}
		m.Tests = map[string]*model.TrafficTest{"t": {Name: "t", From: from, Request: req, Expect: x}}
	}
	runCases(t, []checkCase{
		{"valid", func(m *model.Mesh) {
			test(m, "sidecar/bookinfo/productpage/v1", "GET http://reviews:9080/reviews/1", "reviews/v2", "reviews")
		}, nil},
		{"request without a method", func(m *model.Mesh) {
			test(m, "sidecar/bookinfo/productpage/v1", "http://reviews:9080/")
		}, []string{`GM1101 error -: tests.t.request: want "METHOD URL" or "tcp://HOST:PORT" (got "http://reviews:9080/")`}},
		{"tcp without a port", func(m *model.Mesh) {
			test(m, "sidecar/bookinfo/productpage/v1", "tcp://db")
		}, []string{`GM1101 error -: tests.t.request: tcp request "tcp://db": needs a port`}},
		{"bad port", func(m *model.Mesh) {
			test(m, "sidecar/bookinfo/productpage/v1", "GET http://reviews:99999/")
		}, []string{`GM1101 error -: tests.t.request: url "http://reviews:99999/": port "99999": want 1 to 65535`}},
		{"class of a wrong namespace", func(m *model.Mesh) {
			test(m, "sidecar/default/productpage/v1", "GET http://reviews:9080/")
		}, []string{`GM1102 error -: tests.t.from: service "productpage" is in namespace "bookinfo", not "default"`}},
		{"proxyless class of a sidecar service", func(m *model.Mesh) {
			test(m, "proxyless/bookinfo/productpage/v1", "GET http://reviews:9080/")
		}, []string{`GM1102 error -: tests.t.from: service "productpage" has proxy "sidecar", so it has no proxyless class`}},
		{"not a class", func(m *model.Mesh) {
			test(m, "productpage", "GET http://reviews:9080/")
		}, []string{`GM1102 error -: tests.t.from: ` + classErr("productpage")}},
		{"gateway of the other kind", func(m *model.Mesh) {
			test(m, "ingress/egress", "GET http://books.example.com/")
		}, []string{`GM1102 error -: tests.t.from: gateway "egress" is an egress gateway`}},
		{"unknown version", func(m *model.Mesh) {
			test(m, "sidecar/bookinfo/productpage/v1", "GET http://reviews:9080/", "reviews/v9")
		}, []string{`GM1103 error -: tests.t.expect.to."reviews/v9": service "reviews" has no version "v9"`}},
		{"unknown destination", func(m *model.Mesh) {
			test(m, "sidecar/bookinfo/productpage/v1", "GET http://reviews:9080/", "reviewz")
		}, []string{`GM1103 error -: tests.t.expect.to.reviewz: no service or external service "reviewz"`}},
	})
}

func classErr(s string) string {
	c := &checker{m: &model.Mesh{}}
	return c.classProblem(s)
}
