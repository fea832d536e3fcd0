package render

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

func TestIdentity(t *testing.T) {
	m := &model.Mesh{
		Mesh: model.MeshConfig{TrustDomain: "example.org"},
		Services: map[string]*model.Service{
			"reviews": {Name: "reviews", Namespace: "shop", ServiceAccount: "bookinfo-reviews", Proxy: model.ProxySidecar,
				Versions: map[string]*model.Version{"v1": {Name: "v1"}}},
			"greeter": {Name: "greeter", Namespace: "default", ServiceAccount: "greeter", Proxy: model.ProxyProxyless,
				Versions: map[string]*model.Version{"v2": {Name: "v2"}}},
		},
		Gateways: map[string]*model.Gateway{
			"edge": {Name: "edge", Kind: model.GatewayIngress, Namespace: "istio-system", ServiceAccount: "edge-gw"},
		},
	}
	for _, tc := range []struct{ class, want string }{
		{"sidecar/shop/reviews/v1", "spiffe://example.org/ns/shop/sa/bookinfo-reviews"},
		{"proxyless/default/greeter/v2", "spiffe://example.org/ns/default/sa/greeter"},
		{"ingress/edge", "spiffe://example.org/ns/istio-system/sa/edge-gw"},
		{"sidecar/default/reviews/v1", ""},  // wrong namespace
		{"sidecar/shop/reviews/v9", ""},     // unknown version
		{"proxyless/shop/reviews/v1", ""},   // wrong kind
		{"egress/edge", ""},                 // an ingress gateway
		{"sidecar/shop/reviews/v1/pod", ""}, // a node id, not a class
		{"", ""},
	} {
		got, err := Identity(m, tc.class)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("Identity(%q) = %q, %v; want %q", tc.class, got, err, tc.want)
		}
	}
}
