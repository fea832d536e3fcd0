// Package nodeid owns the grammar of proxy class names and xDS node ids, so
// render (which names classes), the xDS server (which admits nodes by them),
// bootstrap, the agent and the CLI agree on it by construction:
//
//	sidecar/NAMESPACE/SERVICE/VERSION     proxyless/NAMESPACE/SERVICE/VERSION
//	ingress/GATEWAY                       egress/GATEWAY
//
// A node id is a class, "/", and an instance name
// ("sidecar/default/reviews/v2/reviews-v2-7f9c"). It is a leaf package: the
// xDS server imports it without importing render.
package nodeid

import (
	"fmt"
	"strings"
)

// Proxy kinds, the first element of a class name.
const (
	KindSidecar   = "sidecar"
	KindProxyless = "proxyless"
	KindIngress   = "ingress"
	KindEgress    = "egress"
)

// Example is a well-formed node id, quoted in error messages so the reader
// sees the shape that was expected.
const Example = "sidecar/default/reviews/v2/reviews-v2-7f9c"

// Class is a parsed proxy class name. Namespace, Service and Version are set
// for sidecar and proxyless classes, Gateway for ingress and egress ones.
type Class struct {
	// Name is the whole class name, "sidecar/default/reviews/v2".
	Name      string
	Kind      string
	Namespace string
	Service   string
	Version   string
	Gateway   string
}

// String returns the class name.
func (c Class) String() string { return c.Name }

// Sidecar is the class name of one version of a sidecar service.
func Sidecar(ns, svc, version string) string {
	return KindSidecar + "/" + ns + "/" + svc + "/" + version
}

// Proxyless is the class name of one version of a proxyless gRPC service.
func Proxyless(ns, svc, version string) string {
	return KindProxyless + "/" + ns + "/" + svc + "/" + version
}

// Gateway is the class name of an ingress or egress gateway.
func Gateway(kind, gateway string) string { return kind + "/" + gateway }

// parts names the elements of a class of each kind, for error messages;
// nil for an unknown kind.
func parts(kind string) []string {
	switch kind {
	case KindSidecar, KindProxyless:
		return []string{"kind", "namespace", "service", "version"}
	case KindIngress, KindEgress:
		return []string{"kind", "gateway"}
	}
	return nil
}

// grammar is a kind's class shape: "sidecar/NAMESPACE/SERVICE/VERSION".
func grammar(kind string) string {
	g := kind
	for _, p := range parts(kind)[1:] {
		g += "/" + strings.ToUpper(p)
	}
	return g
}

// ParseClass parses a class name. It rejects names whose kind is unknown,
// that have the wrong number of elements, or an empty one.
func ParseClass(name string) (Class, error) {
	c, _, err := parse(name, false)
	if err != nil {
		return Class{}, fmt.Errorf("class %q: %w", name, err)
	}
	return c, nil
}

// Parse splits an xDS node id into its class and instance name:
// "sidecar/default/reviews/v2/reviews-v2-7f9c" → class
// "sidecar/default/reviews/v2", instance "reviews-v2-7f9c". It rejects ids
// whose kind is unknown, that have the wrong number of elements, or an
// empty one, because a node with a malformed id must never receive another
// proxy's config.
func Parse(id string) (Class, string, error) {
	if id == "" {
		return Class{}, "", fmt.Errorf("empty node id; want CLASS/INSTANCE, like %q", Example)
	}
	if !strings.Contains(id, "/") {
		return Class{}, "", fmt.Errorf("node id %q is not CLASS/INSTANCE (like %q)", id, Example)
	}
	c, instance, err := parse(id, true)
	if err != nil {
		return Class{}, "", fmt.Errorf("node id %q: %w", id, err)
	}
	return c, instance, nil
}

// parse is the one parser behind Parse and ParseClass.
func parse(s string, withInstance bool) (Class, string, error) {
	elems := strings.Split(s, "/")
	kind := elems[0]
	names := parts(kind)
	if names == nil {
		return Class{}, "", fmt.Errorf("unknown proxy kind %q (want sidecar, proxyless, ingress or egress)", kind)
	}
	want, shape := len(names), grammar(kind)
	if withInstance {
		names = append(names, "instance")
		want, shape = want+1, shape+"/INSTANCE"
	}
	if len(elems) != want {
		return Class{}, "", fmt.Errorf("want %s (got %d parts)", shape, len(elems))
	}
	for i, e := range elems {
		if e == "" {
			return Class{}, "", fmt.Errorf("empty %s", names[i])
		}
	}
	n := len(parts(kind))
	c := Class{Name: s, Kind: kind}
	if withInstance {
		c.Name = s[:len(s)-len(elems[n])-1]
	}
	if n == 4 {
		c.Namespace, c.Service, c.Version = elems[1], elems[2], elems[3]
	} else {
		c.Gateway = elems[1]
	}
	if withInstance {
		return c, elems[n], nil
	}
	return c, "", nil
}
