package istioimport

import (
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// serviceEntry converts a ServiceEntry into an external service.
func (c *converter) serviceEntry(o *object) {
	name := dnsName(o.name)
	if c.mesh.External[name] != nil {
		o.rep.add(o.root, Skipped, "external service %q already converted from another ServiceEntry", name)
		return
	}
	x := &model.External{Name: name, Hosts: o.spec.get("hosts").strs(), Resolution: "DNS"}
	if loc := o.spec.get("location"); loc.str() == "MESH_INTERNAL" {
		o.rep.approx(loc, "MESH_INTERNAL: gitmesh treats every ServiceEntry as outside the mesh (no mTLS to it); declare in-mesh workloads as services")
	}
	switch r := o.spec.get("resolution"); r.str() {
	case "", "DNS":
	case "STATIC":
		x.Resolution = "STATIC"
	case "DNS_ROUND_ROBIN":
		o.rep.approx(r, "DNS_ROUND_ROBIN becomes DNS (Envoy STRICT_DNS: every address resolved is an endpoint)")
	default:
		o.rep.approx(r, "resolution %q becomes DNS: gitmesh resolves the hosts or uses static endpoints", r.str())
	}
	for _, p := range o.spec.get("ports").list() {
		num, _ := p.get("number").int()
		port := model.Port{Name: dnsName(p.get("name").str()), Number: num, Protocol: seProtocol(p.get("protocol"), o.rep)}
		if port.Name == "" {
			port.Name = string(port.Protocol) + "-" + strconv.Itoa(num)
		}
		if tp, ok := p.get("targetPort").int(); ok && tp != num {
			port.TargetPort = tp
		}
		x.Ports = append(x.Ports, port)
	}
	for _, e := range o.spec.get("endpoints").list() {
		ep := model.Endpoint{Address: e.get("address").str()}
		if ps := e.get("ports").entries(); len(ps) > 0 {
			ep.Ports = map[string]int{}
			for _, p := range ps {
				ep.Ports[dnsName(p.key)], _ = p.val.int()
			}
		}
		ep.Weight, _ = e.get("weight").int()
		x.Endpoints = append(x.Endpoints, ep)
	}
	switch {
	case len(x.Hosts) == 0 || len(x.Ports) == 0:
		o.rep.add(o.root, Skipped, "a ServiceEntry without hosts or ports cannot be an external service")
		return
	case x.Resolution == "STATIC" && len(x.Endpoints) == 0:
		o.rep.add(o.root, Skipped, "STATIC resolution without endpoints (workloadSelector entries are not converted)")
		return
	}
	c.mesh.External[name] = x
	c.origin("external/"+name+".cue", o)
}

// seProtocol maps an Istio port protocol to gitmesh's.
func seProtocol(n node, rep reporter) model.Protocol {
	switch p := strings.ToUpper(n.str()); p {
	case "HTTP", "":
		return model.ProtocolHTTP
	case "HTTP2":
		return model.ProtocolHTTP2
	case "GRPC":
		return model.ProtocolGRPC
	case "HTTPS":
		return model.ProtocolHTTPS
	case "TLS":
		return model.ProtocolTLS
	case "TCP":
		return model.ProtocolTCP
	default:
		rep.approx(n, "protocol %q becomes tcp", n.str())
		return model.ProtocolTCP
	}
}

// gatewayKind tells ingress from egress gateways. Istio's Gateway has no
// direction: the workload it selects does. The selectors of Istio's own
// gateways say it (istio: ingressgateway / egressgateway); otherwise the
// name does, and the report says it was guessed.
func gatewayKind(o *object) (model.GatewayKind, string, string) {
	sel := o.spec.get("selector").strMap()
	switch sel["istio"] {
	case "ingressgateway":
		return model.GatewayIngress, "istio-system", "istio-ingressgateway-service-account"
	case "egressgateway":
		return model.GatewayEgress, "istio-system", "istio-egressgateway-service-account"
	}
	if strings.Contains(o.name, "egress") {
		return model.GatewayEgress, "", ""
	}
	return model.GatewayIngress, "", ""
}

// gateway converts an Istio Gateway into a gitmesh gateway with its
// listeners; routes come from the VirtualServices bound to it.
func (c *converter) gateway(o *object) {
	name := dnsName(o.name)
	if c.mesh.Gateways[name] != nil {
		o.rep.add(o.root, Skipped, "gateway %q already converted from another Gateway", name)
		return
	}
	kind, ns, sa := gatewayKind(o)
	g := &model.Gateway{Name: name, Kind: kind, Namespace: o.namespace, ServiceAccount: name}
	if ns != "" {
		g.Namespace, g.ServiceAccount = ns, sa
		o.rep.note(o.spec.get("selector"), "selects Istio's %s: gitmesh gateway %q runs as %s/%s, the identity Istio's install gives it", kind, name, ns, sa)
	} else {
		o.rep.approx(o.spec.get("selector"), "the selector does not name Istio's ingress or egress gateway: %q is taken as an %s gateway by its name, running as %s/%s", name, kind, g.Namespace, g.ServiceAccount)
	}
	ports := map[int]int{}
	for _, s := range o.spec.get("servers").list() {
		num, _ := s.get("port").get("number").int()
		ports[num]++
	}
	for _, s := range o.spec.get("servers").list() {
		if l, ok := c.listener(s, name, ports, o.rep); ok {
			g.Listeners = append(g.Listeners, l)
		}
	}
	if len(g.Listeners) == 0 {
		o.rep.add(o.root, Skipped, "no server could be converted into a listener")
		return
	}
	if g.Kind == model.GatewayEgress {
		// Sidecars need to know where the egress gateway runs; Istio's
		// Gateway does not say (its Kubernetes Service does), so the
		// endpoint is that Service's DNS name.
		svc := "istio-egressgateway"
		if ns == "" {
			svc = name
		}
		addr := svc + "." + g.Namespace + ".svc." + c.opts.ClusterDomain
		g.Endpoints = []model.Endpoint{{Address: addr}}
		o.rep.approx(o.spec.get("selector"), "sidecars reach the egress gateway at %q, the Kubernetes Service Istio's install gives it (gitmesh gateways take static endpoints)", addr)
	}
	c.mesh.Gateways[name] = g
	c.origin("gateways/"+name+".cue", o)
}

// listener converts one Gateway server.
func (c *converter) listener(s node, gw string, ports map[int]int, rep reporter) (model.GatewayListener, bool) {
	p := s.get("port")
	num, _ := p.get("number").int()
	l := model.GatewayListener{Port: num}
	switch proto := strings.ToUpper(p.get("protocol").str()); proto {
	case "HTTP":
		l.Protocol = model.ProtocolHTTP
	case "HTTPS":
		l.Protocol = model.ProtocolHTTPS
	case "HTTP2", "GRPC":
		l.Protocol = model.ProtocolHTTP
		rep.approx(p.get("protocol"), "%s becomes an http listener (Envoy's HTTP connection manager speaks HTTP/1.1 and HTTP/2 alike)", proto)
	case "TLS":
		l.Protocol = model.ProtocolTLS
	default:
		l.Protocol = model.ProtocolTCP
		if proto != "TCP" {
			rep.approx(p.get("protocol"), "%s becomes a tcp listener", proto)
		}
	}
	if tp := p.get("targetPort"); tp.ok() {
		rep.drop(tp, "gitmesh gateways listen on the port itself")
	}
	// Listeners sharing a port need names of their own; otherwise the
	// default PROTOCOL-PORT is kept.
	if ports[num] > 1 {
		l.Name = dnsName(p.get("name").str())
		if l.Name == "" {
			l.Name = dnsName(s.get("name").str())
		}
	} else {
		p.get("name")
	}
	for _, h := range s.get("hosts").list() {
		host := h.str()
		if ns, rest, ok := strings.Cut(host, "/"); ok {
			if ns != "*" && ns != "." {
				rep.approx(h, "namespace %q of the host is dropped: gitmesh binds routes to gateways by name, not by namespace", ns)
			}
			host = rest
		}
		l.Hosts = append(l.Hosts, host)
	}
	if len(l.Hosts) == 0 {
		l.Hosts = []string{"*"}
	}
	if t := s.get("tls"); t.ok() {
		if hr := t.get("httpsRedirect"); hr.ok() {
			rep.drop(hr, "gitmesh has no HTTPS redirect: plain HTTP is served as HTTP on this port")
		}
		mode := t.get("mode")
		switch m := mode.str(); m {
		case "SIMPLE", "MUTUAL", "PASSTHROUGH":
			l.TLS = &model.GatewayTLS{Mode: m}
		case "OPTIONAL_MUTUAL":
			l.TLS = &model.GatewayTLS{Mode: "MUTUAL"}
			rep.approx(mode, "OPTIONAL_MUTUAL becomes MUTUAL: clients without a certificate are refused")
		case "":
		default:
			rep.drop(s, "TLS mode %q has no gitmesh equivalent: the server is not converted", m)
			return l, false
		}
		if l.TLS != nil {
			l.TLS.CredentialName = t.get("credentialName").str()
			for _, f := range []string{"serverCertificate", "privateKey", "caCertificates"} {
				if n := t.get(f); n.ok() {
					rep.drop(n, "gitmesh never reads key material from paths: it serves the certificate named by credentialName over SDS")
				}
			}
			if l.TLS.Mode != "PASSTHROUGH" && l.TLS.CredentialName == "" {
				l.TLS.CredentialName = gw + "-" + strconv.Itoa(num)
				rep.approx(t, "no credentialName: the listener serves credential %q, which serve reads from --credentials-dir", l.TLS.CredentialName)
			}
			switch v := t.get("minProtocolVersion"); v.str() {
			case "":
			case "TLSV1_2":
				l.TLS.MinVersion = "1.2"
			case "TLSV1_3":
				l.TLS.MinVersion = "1.3"
			default:
				rep.approx(v, "%s is below what gitmesh accepts: the minimum becomes Envoy's default (TLS 1.2)", v.str())
			}
		}
	}
	if l.Protocol == model.ProtocolHTTPS && l.TLS == nil {
		rep.drop(s, "an HTTPS server without tls: not converted")
		return l, false
	}
	if l.TLS != nil && l.Protocol == model.ProtocolHTTP {
		l.Protocol = model.ProtocolHTTPS
	}
	return l, true
}
