package traffic

import (
	"strings"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema/model"
)

// origins maps rendered names back to the model paths they came from, by
// render's naming rules (render/NAMES.md): a virtual host "FQDN:PORT" is a
// service's, a route's name is its rule's name, a cluster
// "outbound|PORT|VERSION|FQDN" is a version's, an RBAC policy "allow-I" is
// authorization.allow[I]. A name it cannot map yields "" (no position),
// never a wrong one.
type origins struct {
	m     *model.Mesh
	fqdns map[string]string // FQDN → service
}

func newOrigins(m *model.Mesh) *origins {
	o := &origins{m: m, fqdns: map[string]string{}}
	if m == nil {
		return o
	}
	for _, n := range m.ServiceNames() {
		o.fqdns[m.Host(m.Services[n])] = n
	}
	return o
}

// hostOwner is the model path owning a host: a service or an external.
func (o *origins) hostOwner(host string) (path string, svc *model.Service, ext string) {
	if o.m == nil {
		return "", nil, ""
	}
	if n, ok := o.fqdns[host]; ok {
		return model.Path("services", n), o.m.Services[n], ""
	}
	for _, xn := range o.m.ExternalNames() {
		for _, h := range o.m.External[xn].Hosts {
			if h == host {
				return model.Path("external", xn), nil, xn
			}
		}
	}
	return "", nil, ""
}

// vhostHost is the HOST of a virtual host named HOST:PORT (render's
// hostPort), or the whole name when it has no port.
func vhostHost(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > 0 {
		return name[:i]
	}
	return name
}

func (o *origins) vhost(class, name string) string {
	if p, _, _ := o.hostOwner(vhostHost(name)); p != "" {
		return p
	}
	if g := o.gateway(class); g != nil {
		return model.Path("gateways", g.Name)
	}
	return ""
}

func (o *origins) gateway(class string) *model.Gateway {
	cl, err := nodeid.ParseClass(class)
	if err != nil || o.m == nil || cl.Gateway == "" {
		return nil
	}
	return o.m.Gateways[cl.Gateway]
}

// route is the model path of the rule a rendered route came from.
func (o *origins) route(class, vh, name string) string {
	if g := o.gateway(class); g != nil {
		for i, r := range g.Routes {
			if r.Name == name {
				return model.Index(model.Path("gateways", g.Name, "routes"), i)
			}
		}
	}
	p, s, _ := o.hostOwner(vhostHost(vh))
	if s != nil {
		for i, r := range s.Routes {
			if r.Name == name {
				return model.Index(p+".routes", i)
			}
		}
	}
	return p
}

func (o *origins) routeField(class, vh, name, field string) string {
	p := o.route(class, vh, name)
	if strings.HasSuffix(p, "]") {
		return p + "." + field
	}
	return p
}

// cluster maps outbound|PORT|VERSION|HOST.
func (o *origins) cluster(name string) string {
	_, version, host, ok := render.ParseOutboundCluster(name)
	if !ok {
		return ""
	}
	p, s, _ := o.hostOwner(host)
	if s != nil && version != "" && s.Versions[version] != nil {
		return model.Path("services", s.Name, "versions", version)
	}
	return p
}

// policy maps an RBAC policy name of the destination class's service.
func (o *origins) policy(class, name string) string {
	cl, err := nodeid.ParseClass(class)
	if err != nil || o.m == nil || o.m.Services[cl.Service] == nil {
		return ""
	}
	base := model.Path("services", cl.Service, "authorization")
	if allow, i, ok := render.ParseRBACPolicyName(name); ok {
		list := "deny"
		if allow {
			list = "allow"
		}
		return model.Index(base+"."+list, i)
	}
	return base
}

// dest maps a destination name ("reviews/v2", an external) to its path.
func (o *origins) dest(d string) string {
	if o.m == nil {
		return ""
	}
	svc, ver, _ := strings.Cut(d, "/")
	if s := o.m.Services[svc]; s != nil {
		if s.Versions[ver] != nil {
			return model.Path("services", svc, "versions", ver)
		}
		return model.Path("services", svc)
	}
	if o.m.External[d] != nil {
		return model.Path("external", d)
	}
	return ""
}

// clusterDest is the destination a mesh cluster is named after
// ("reviews/v2", or "reviews" for all versions), or "".
func (o *origins) clusterDest(name string) string {
	_, version, host, ok := render.ParseOutboundCluster(name)
	if !ok {
		return ""
	}
	_, s, ext := o.hostOwner(host)
	switch {
	case s != nil && version != "":
		return s.Name + "/" + version
	case s != nil:
		return s.Name
	}
	return ext
}
