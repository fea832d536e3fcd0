package traffic

import (
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema/model"
)

// World is what a workload knows outside its proxy's config: which address
// a name resolves to (DNS, or /etc/hosts from `gitmesh render -o hosts`),
// which workload answers at an endpoint address, and each class's
// identity. It is built from the model because that is where the mesh's
// addresses and identities are declared; routing never is read from it.
type World struct {
	m *model.Mesh
	// vips are the services' VIPs (model.Mesh.VIPs, as render uses).
	vips map[string][]string
	// owners maps an endpoint address to the workloads there.
	owners map[string][]owner
	// externals maps an external host to its external service's name.
	externals map[string]string
}

// owner is a workload at an address: a class (or none, for proxy "none"
// services) and the destination name tests use ("reviews/v2").
type owner struct {
	class string
	dest  string
	// svc is the owner's service (nil for gateways and externals), whose
	// target ports tell owners at one address apart.
	svc *model.Service
	// ports are the endpoint's own target port overrides.
	ports map[string]int
}

// listensOn reports whether the owner can be the workload behind port:
// several services' endpoints may share one address (a loopback test
// mesh), told apart by their target ports.
func (o owner) listensOn(port int) bool {
	if o.svc == nil {
		return true
	}
	for _, p := range o.svc.Ports {
		if tp, ok := o.ports[p.Name]; ok && tp == port {
			return true
		}
		if p.Target() == port {
			return true
		}
	}
	return false
}

// NewWorld indexes the mesh; discovered are the addresses render was given
// (nil for Git-only meshes), so VIPs agree with the rendered VIP_PORT
// listeners.
func NewWorld(m *model.Mesh, discovered map[string][]string, endpoints map[string][]model.Endpoint) *World {
	w := &World{m: m, vips: m.VIPs(discovered).Addresses, owners: map[string][]owner{}, externals: map[string]string{}}
	for _, sn := range m.ServiceNames() {
		s := m.Services[sn]
		for _, vn := range s.VersionNames() {
			class := ""
			switch s.Proxy {
			case model.ProxySidecar:
				class = nodeid.Sidecar(s.Namespace, s.Name, vn)
			case model.ProxyProxyless:
				class = nodeid.Proxyless(s.Namespace, s.Name, vn)
			}
			eps := s.Versions[vn].Endpoints
			if d, ok := endpoints[sn+"/"+vn]; ok {
				eps = d
			}
			for _, e := range eps {
				w.owners[e.Address] = append(w.owners[e.Address], owner{class: class, dest: sn + "/" + vn, svc: s, ports: e.Ports})
			}
		}
	}
	for _, gn := range m.GatewayNames() {
		g := m.Gateways[gn]
		for _, e := range g.Endpoints {
			w.owners[e.Address] = append(w.owners[e.Address], owner{class: nodeid.Gateway(string(g.Kind), gn), dest: string(g.Kind) + "/" + gn})
		}
	}
	for _, xn := range m.ExternalNames() {
		x := m.External[xn]
		for _, h := range x.Hosts {
			if _, ok := w.externals[h]; !ok {
				w.externals[h] = xn
			}
		}
		for _, e := range x.Endpoints {
			w.owners[e.Address] = append(w.owners[e.Address], owner{dest: xn})
		}
	}
	return w
}

// Identity is the SPIFFE id of a class's workloads.
func (w *World) Identity(class string) string {
	id, err := render.Identity(w.m, class)
	if err != nil {
		return ""
	}
	return id
}

// unknownAddr stands for an address outside the mesh a name resolves to
// through real DNS (TEST-NET-3, RFC 5737): no listener claims it.
const unknownAddr = "203.0.113.1"

// Resolve is the address a workload in namespace ns gets for host: the
// host itself when it is an IP, a service's first VIP for NAME (in ns),
// NAME.NS, NAME.NS.svc and the FQDN, else an address outside the mesh.
// Short names resolve in the caller's namespace, as with DNS search paths.
func (w *World) Resolve(host, ns string) string {
	if isIP(host) {
		return host
	}
	if s := w.service(host, ns); s != nil {
		if v := w.vips[s.Name]; len(v) > 0 {
			return v[0]
		}
	}
	return unknownAddr
}

// service returns the mesh service a host names from namespace ns, or nil.
func (w *World) service(host, ns string) *model.Service {
	suffix := ".svc." + w.m.Mesh.ClusterDomain
	name, rest, _ := strings.Cut(strings.TrimSuffix(host, suffix), ".")
	s := w.m.Services[name]
	if s == nil {
		return nil
	}
	switch rest {
	case "":
		if s.Namespace == ns {
			return s
		}
	case s.Namespace, s.Namespace + ".svc":
		return s
	}
	return nil
}

// ownersOf returns the workloads that can answer at addr:port, those
// whose destination the cluster is named after (hint: "greeter/v1", or
// "greeter" for all versions) first: several services' endpoints may share
// one address and port (a loopback test mesh), and the cluster says which
// one the proxy meant.
func (w *World) ownersOf(addr string, port int, hint string) []owner {
	var first, rest []owner
	for _, o := range w.owners[addr] {
		switch {
		case !o.listensOn(port):
		case hint != "" && (o.dest == hint || strings.HasPrefix(o.dest, hint+"/")):
			first = append(first, o)
		default:
			rest = append(rest, o)
		}
	}
	return append(first, rest...)
}

// external names the external service with host, or "".
func (w *World) external(host string) string { return w.externals[host] }

func isIP(s string) bool {
	if s == "" {
		return false
	}
	colon := strings.Contains(s, ":")
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '.' || (colon && (c == ':' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'))) {
			return false
		}
	}
	return true
}

// workload names who answers at addr:port, so replicas group: the owner's
// class and destination, else the address itself.
func (w *World) workload(addr string, port int, hint string) string {
	if os := w.ownersOf(addr, port, hint); len(os) > 0 {
		return os[0].class + "|" + os[0].dest
	}
	return addr + ":" + strconv.Itoa(port)
}
