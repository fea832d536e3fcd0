package render

import (
	"slices"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/gitmesh/gitmesh/schema/model"
)

// TestUnroutedStreamHost: a PASSTHROUGH host that no route forwards is
// policies' finding (GM0210), not a render failure; render leaves the host
// without a filter chain. A route without port never forwards a stream.
func TestUnroutedStreamHost(t *testing.T) {
	m := loadCase(t, "ingress-passthrough")
	g := m.Gateways["edge"]
	g.Routes = slices.DeleteFunc(g.Routes, func(r model.Route) bool { return r.Name == "git" })
	// A route without port and without hosts: HTTP only.
	g.Routes[0].Hosts = nil
	b, err := Render(Input{Mesh: m})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var chains []string
	for _, r := range b.Proxy("ingress/edge").Resources(resource.ListenerType) {
		if r.Name != "0.0.0.0_443" {
			continue
		}
		for _, fc := range r.Message.(*listenerv3.Listener).GetFilterChains() {
			chains = append(chains, fc.GetName())
		}
	}
	if want := []string{"https-443|vault.example.com"}; !slices.Equal(chains, want) {
		t.Errorf("0.0.0.0_443 filter chains = %q, want %q", chains, want)
	}
}
