package render

import (
	"fmt"
	"strings"

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
	parts := strings.Split(class, "/")
	switch {
	case len(parts) == 4 && (parts[0] == KindSidecar || parts[0] == KindProxyless):
		s := m.Services[parts[2]]
		if s == nil || s.Namespace != parts[1] || s.Versions[parts[3]] == nil || string(s.Proxy) != parts[0] {
			return "", fmt.Errorf("identity of class %q: no %s version %q of service %q in namespace %q", class, parts[0], parts[3], parts[2], parts[1])
		}
		return m.SPIFFEID(s.Namespace, s.ServiceAccount), nil
	case len(parts) == 2 && (parts[0] == KindIngress || parts[0] == KindEgress):
		g := m.Gateways[parts[1]]
		if g == nil || string(g.Kind) != parts[0] {
			return "", fmt.Errorf("identity of class %q: no %s gateway %q", class, parts[0], parts[1])
		}
		return m.SPIFFEID(g.Namespace, g.ServiceAccount), nil
	}
	return "", fmt.Errorf("identity of class %q: not a proxy class (sidecar/NS/SVC/VER, proxyless/NS/SVC/VER, ingress/GW or egress/GW)", class)
}
