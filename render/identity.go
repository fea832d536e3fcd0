package render

import (
	"fmt"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Identity returns the SPIFFE id a proxy class's workloads carry: the
// service's namespace and service account for sidecar and proxyless
// classes, the gateway's for ingress and egress classes. It exists so that
// the CA issues, and the xDS server admits, exactly the identity render put
// into peers' SAN matchers and RBAC principals: one rule, in one place.
func Identity(m *model.Mesh, class string) (string, error) {
	if m == nil {
		return "", fmt.Errorf("identity of class %q: no mesh", class)
	}
	c, err := nodeid.ParseClass(class)
	if err != nil {
		return "", fmt.Errorf("identity of %w", err)
	}
	return identityOf(m, class, c)
}

// identityOf is Identity of a parsed class.
func identityOf(m *model.Mesh, class string, c nodeid.Class) (string, error) {
	switch c.Kind {
	case KindSidecar, KindProxyless:
		s := m.Services[c.Service]
		if s == nil || s.Namespace != c.Namespace || s.Versions[c.Version] == nil || string(s.Proxy) != c.Kind {
			return "", fmt.Errorf("identity of class %q: no %s version %q of service %q in namespace %q", class, c.Kind, c.Version, c.Service, c.Namespace)
		}
		return m.SPIFFEID(s.Namespace, s.ServiceAccount), nil
	default:
		g := m.Gateways[c.Gateway]
		if g == nil || string(g.Kind) != c.Kind {
			return "", fmt.Errorf("identity of class %q: no %s gateway %q", class, c.Kind, c.Gateway)
		}
		return m.SPIFFEID(g.Namespace, g.ServiceAccount), nil
	}
}
