package traffic

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/gitmesh/gitmesh/render"
)

// Config is what one proxy class received, indexed by resource name: the
// evaluator's only view of routing. Tests build small ones by hand to break
// one rule at a time.
type Config struct {
	Listeners map[string]*listenerv3.Listener
	Routes    map[string]*routev3.RouteConfiguration
	Clusters  map[string]*clusterv3.Cluster
	Endpoints map[string]*endpointv3.ClusterLoadAssignment
	// order is the listener names in the order they were added (sorted
	// for a bundle), so searches are deterministic.
	order []string
}

// NewConfig returns an empty Config.
func NewConfig() *Config {
	return &Config{
		Listeners: map[string]*listenerv3.Listener{},
		Routes:    map[string]*routev3.RouteConfiguration{},
		Clusters:  map[string]*clusterv3.Cluster{},
		Endpoints: map[string]*endpointv3.ClusterLoadAssignment{},
	}
}

// Add adds resources to the config by their type.
func (c *Config) Add(msgs ...any) *Config {
	for _, m := range msgs {
		switch m := m.(type) {
		case *listenerv3.Listener:
			if _, ok := c.Listeners[m.GetName()]; !ok {
				c.order = append(c.order, m.GetName())
			}
			c.Listeners[m.GetName()] = m
		case *routev3.RouteConfiguration:
			c.Routes[m.GetName()] = m
		case *clusterv3.Cluster:
			c.Clusters[m.GetName()] = m
		case *endpointv3.ClusterLoadAssignment:
			c.Endpoints[m.GetClusterName()] = m
		}
	}
	return c
}

// Configs looks up a class's config; nil means the class does not exist.
type Configs func(class string) *Config

// BundleConfigs reads classes' configs from a rendered bundle, each
// indexed once on first use.
func BundleConfigs(b *render.Bundle) Configs {
	memo := map[string]*Config{}
	return func(class string) *Config {
		if c, ok := memo[class]; ok {
			return c
		}
		p := b.Proxy(class)
		if p == nil {
			memo[class] = nil
			return nil
		}
		c := NewConfig()
		for _, t := range []string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType} {
			for _, r := range p.Resources(t) {
				c.Add(r.Message)
			}
		}
		memo[class] = c
		return c
	}
}
