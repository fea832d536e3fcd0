package istioimport

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// k8sService reads a Kubernetes Service for what Istio leaves to it: the
// ports (with Istio's protocol selection by appProtocol or name prefix)
// and the selector. Every other field is Kubernetes' business and is not
// reported.
func (c *converter) k8sService(o *object) {
	if o.spec.get("type").str() == "ExternalName" {
		o.rep.add(o.spec.get("type"), Skipped, "ExternalName services are not converted; declare a ServiceEntry")
		return
	}
	s, info, err := c.service(o.name, o.namespace, o.root, o.rep)
	if err != nil {
		o.rep.add(o.root, Skipped, "%v", err)
		return
	}
	info.fromK8s = true
	if sel := o.spec.get("selector").strMap(); len(sel) > 0 {
		info.selector = sel
	}
	s.Ports = nil
	for _, p := range o.spec.get("ports").list() {
		if strings.EqualFold(p.get("protocol").str(), "UDP") {
			o.rep.add(p, Dropped, "UDP ports are not meshed")
			continue
		}
		num, _ := p.get("port").int()
		name := p.get("name").str()
		port := model.Port{Name: dnsName(name), Number: num, Protocol: istioProtocol(name, p.get("appProtocol").str())}
		if port.Name == "" {
			port.Name = string(port.Protocol) + "-" + strconv.Itoa(num)
		}
		if tp, ok := p.get("targetPort").int(); ok && tp != num {
			port.TargetPort = tp
		}
		s.Ports = append(s.Ports, port)
	}
	c.origin("services/"+s.Name+".cue", o)
}

// istioProtocol is Istio's protocol selection for a Kubernetes port:
// appProtocol, else the port name's prefix before "-" ("http-web"), else
// TCP. https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
func istioProtocol(name, appProtocol string) model.Protocol {
	p := appProtocol
	if p == "" {
		p, _, _ = strings.Cut(name, "-")
	}
	switch strings.ToLower(p) {
	case "http":
		return model.ProtocolHTTP
	case "http2", "h2c":
		return model.ProtocolHTTP2
	case "grpc", "grpc-web":
		return model.ProtocolGRPC
	case "https":
		return model.ProtocolHTTPS
	case "tls":
		return model.ProtocolTLS
	}
	return model.ProtocolTCP
}

// service returns the service NAME in namespace ns, creating it on first
// mention. Service names are global in gitmesh: the same name in another
// namespace is refused.
func (c *converter) service(name, ns string, at node, rep reporter) (*model.Service, *svcInfo, error) {
	key := dnsName(name)
	if s := c.mesh.Services[key]; s != nil {
		if s.Namespace != ns {
			return nil, nil, fmt.Errorf("service %q of namespace %q: gitmesh service names are mesh-wide and %q is already the service of namespace %q", name, ns, key, s.Namespace)
		}
		return s, c.svc[key], nil
	}
	s := &model.Service{Name: key, Namespace: ns, Proxy: model.ProxySidecar, Discovery: "kubernetes",
		Versions: map[string]*model.Version{}, DependsOn: []string{"*"}}
	c.mesh.Services[key] = s
	c.svc[key] = &svcInfo{selector: map[string]string{"app": name}, first: at, rep: rep}
	return s, c.svc[key], nil
}

// host is what an Istio host name refers to.
type host struct {
	service  string // a mesh service
	external string // an external service
	egress   string // an egress gateway's own Kubernetes service
}

// resolveHost reads an Istio host the way Istio does for a rule in
// namespace ns: a ServiceEntry host first, then a short name (NAME, in
// ns), NAME.NS, NAME.NS.svc or NAME.NS.svc.cluster.local; a service named
// for the first time is created (o is the object that names the host).
// The error says why a host is none of these (wildcards, outside names
// without a ServiceEntry, a service name taken in another namespace).
func (c *converter) resolveHost(h string, o *object, at node) (host, error) {
	ns := o.namespace
	for _, name := range slices.Sorted(maps.Keys(c.mesh.External)) {
		if slices.Contains(c.mesh.External[name].Hosts, h) {
			return host{external: name}, nil
		}
	}
	notService := fmt.Errorf("host %q is neither a service (NAME, NAME.NS, NAME.NS.svc.%s) nor a ServiceEntry host", h, c.opts.ClusterDomain)
	if strings.Contains(h, "*") {
		return host{}, fmt.Errorf("wildcard host %q names no single service", h)
	}
	short := strings.TrimSuffix(strings.TrimSuffix(h, "."+c.opts.ClusterDomain), ".svc")
	parts := strings.Split(short, ".")
	name, hns := parts[0], ns
	switch len(parts) {
	case 1:
	case 2:
		hns = parts[1]
	default:
		return host{}, notService
	}
	if strings.Contains(name, "egressgateway") {
		return host{egress: name}, nil
	}
	if !nameRE.MatchString(dnsName(name)) {
		return host{}, notService
	}
	s, _, err := c.service(name, hns, at, o.rep)
	if err != nil {
		return host{}, err
	}
	return host{service: s.Name}, nil
}

// seePort records a port number a rule names for a service.
func (c *converter) seePort(svc string, port int) {
	if info := c.svc[svc]; info != nil && port > 0 && !slices.Contains(info.portsSeen, port) {
		info.portsSeen = append(info.portsSeen, port)
	}
}

// version returns the version of svc named by an Istio subset, creating
// it (labels version: NAME, Istio's convention) when no DestinationRule
// defined it.
func (c *converter) version(svc, subset string, at node, rep reporter) string {
	s := c.mesh.Services[svc]
	name := dnsName(subset)
	if s.Versions[name] == nil {
		rep.approx(at, "subset %q of %q is defined by no DestinationRule in the input: version %q selects labels version: %q", subset, svc, name, subset)
		s.Versions[name] = &model.Version{Name: name, Labels: map[string]string{"version": subset}}
	}
	return name
}

// finishServices fills in what the input left open: ports of services
// no Kubernetes Service declared, and a version for services without
// subsets (a proxy class needs one).
func (c *converter) finishServices() {
	if len(c.mesh.Services) > 0 {
		c.report = append(c.report, Finding{Field: "services", Kind: Note,
			Message: `every service has discovery: "kubernetes": Istio lists no endpoints, so serve takes them from the EndpointSlices of the Kubernetes Service of the same name and namespace, by version labels (validate and render run without them)`})
	}
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
		s, info := c.mesh.Services[name], c.svc[name]
		if !info.fromK8s || len(s.Ports) == 0 {
			ports := info.portsSeen
			how := "the port numbers the routing rules name"
			if len(ports) == 0 {
				ports = []int{c.opts.DefaultPort}
				how = fmt.Sprintf("the default port %d (--default-port)", c.opts.DefaultPort)
			}
			s.Ports = nil
			for _, p := range ports {
				pn := "http"
				if len(ports) > 1 {
					pn = "http-" + strconv.Itoa(p)
				}
				s.Ports = append(s.Ports, model.Port{Name: pn, Number: p, Protocol: model.ProtocolHTTP})
			}
			info.rep.approx(info.first, "service %q: no Kubernetes Service in the input declares its ports: %s, protocol http; workloads are assumed labelled app: %q", name, how, name)
		}
		if len(s.Versions) == 0 {
			s.Versions["v1"] = &model.Version{Name: "v1"}
			info.rep.note(info.first, "service %q has no DestinationRule subsets: one version \"v1\" without labels takes every endpoint Kubernetes discovery finds", name)
		}
	}
}

// workload reads a Deployment, StatefulSet or DaemonSet for the one fact
// Istio's identities need: the service account its pods run as, which is
// the SPIFFE principal AuthorizationPolicies name. It goes to the service
// whose selector the pod labels match; everything else about workloads is
// Kubernetes' business and is not reported.
func (c *converter) workload(o *object) {
	tmpl := o.spec.get("template")
	labels := tmpl.get("metadata").get("labels").strMap()
	pod := tmpl.get("spec")
	sa := pod.get("serviceAccountName").str()
	if sa == "" {
		sa = pod.get("serviceAccount").str()
	}
	if sa == "" {
		sa = "default" // what Kubernetes runs the pods as
	}
	matched := false
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
		s, info := c.mesh.Services[name], c.svc[name]
		if s.Namespace != o.namespace || !info.fromK8s || len(labels) == 0 || !subset(info.selector, labels) {
			continue
		}
		matched = true
		switch {
		case s.ServiceAccount == "":
			s.ServiceAccount = sa
			c.origin("services/"+name+".cue", o)
		case s.ServiceAccount != sa:
			o.rep.approx(pod, "runs as %q, but service %q already runs as %q: gitmesh gives a service one identity", sa, name, s.ServiceAccount)
		}
	}
	if !matched {
		o.rep.add(o.root, Skipped, "its pods match no Kubernetes Service of the input: their service account %q is not used", sa)
	}
}
