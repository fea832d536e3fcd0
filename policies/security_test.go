package policies

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

func TestHostsAndConflicts(t *testing.T) {
	runCases(t, []checkCase{
		{"two ingress gateways claim one host", func(m *model.Mesh) {
			g := *m.Gateways["ingress"]
			g.Name = "ingress2"
			g.Listeners = g.Listeners[:1]
			m.Gateways["ingress2"] = &g
			at(m, "gateways.ingress2.listeners[0].hosts[0]", 7, 14)
		}, []string{
			`GM0301 error gateways/ingress2.cue:7:14: gateways.ingress2.listeners[0].hosts[0]: host "bookinfo.example.com" on port 80 is already claimed by gateway "ingress" at gateways.ingress.listeners[0].hosts[0]`,
		}},
		{"same host on another port is fine", func(m *model.Mesh) {
			g := *m.Gateways["ingress"]
			g.Name = "ingress2"
			g.Listeners = []model.GatewayListener{{Name: "http-8080", Port: 8080, Protocol: model.ProtocolHTTP, Hosts: []string{"bookinfo.example.com"}}}
			m.Gateways["ingress2"] = &g
		}, nil},
		{"two externals claim one host and port", func(m *model.Mesh) {
			e := *m.External["googleapis"]
			e.Name, e.Via = "google", ""
			m.External["google"] = &e
			at(m, "external.googleapis.hosts[0]", 2, 10)
		}, []string{
			`GM0301 error external/googleapis.cue:2:10: external.googleapis.hosts[0]: host "www.googleapis.com" port 80 is already claimed by external service "google"`,
		}},
		{"external claims a service host", func(m *model.Mesh) {
			m.External["shadow"] = &model.External{
				Name: "shadow", Hosts: []string{"reviews.bookinfo.svc.cluster.local"},
				Ports: []model.Port{httpPort(9080)}, Resolution: "DNS",
			}
		}, []string{
			`GM0301 error -: external.shadow.hosts[0]: host "reviews.bookinfo.svc.cluster.local" is the host of service "reviews"`,
		}},
		{"listeners on one port with two protocols", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			g.Listeners = append(g.Listeners, model.GatewayListener{Name: "grpc-80", Port: 80, Protocol: model.ProtocolGRPC, Hosts: []string{"grpc.example.com"}})
			at(m, "gateways.ingress.listeners[2].protocol", 15, 15)
		}, []string{
			`GM0302 error gateways/ingress.cue:15:15: gateways.ingress.listeners[2].protocol: port 80 is "grpc" here but "http" in listeners[0]`,
		}},
		{"port declared twice", func(m *model.Mesh) {
			s := m.Services["reviews"]
			s.Ports = append(s.Ports, model.Port{Name: "http", Number: 9080, Protocol: model.ProtocolHTTP, TargetPort: 9080})
			at(m, "services.reviews.ports[1]", 5, 3)
		}, []string{
			`GM0303 error services/reviews.cue:5:3: services.reviews.ports[1].number: port 9080 is also declared by ports[0]`,
			`GM0303 error services/reviews.cue:5:3: services.reviews.ports[1].name: port name "http" is also used by ports[0]`,
		}},
		{"target port used twice", func(m *model.Mesh) {
			s := m.Services["reviews"]
			s.Ports = append(s.Ports, model.Port{Name: "alt", Number: 80, Protocol: model.ProtocolHTTP, TargetPort: 9080})
			at(m, "services.reviews.ports[1].targetPort", 5, 40)
		}, []string{
			`GM0303 error services/reviews.cue:5:40: services.reviews.ports[1].targetPort: target port 9080 is also ports[0]'s: the sidecar tells inbound ports apart by target port`,
		}},
		{"target port the proxy owns", func(m *model.Mesh) {
			s := m.Services["reviews"]
			s.Ports = append(s.Ports, model.Port{Name: "alt", Number: 80, Protocol: model.ProtocolHTTP, TargetPort: 15006})
			at(m, "services.reviews.ports[1].targetPort", 5, 40)
		}, []string{
			`GM0307 error services/reviews.cue:5:40: services.reviews.ports[1].targetPort: target port 15006 is a port the sidecar proxy owns (15000, 15001, 15006, 15020, 15021, 15090); the application cannot listen on it`,
		}},
		{"listener name used twice", func(m *model.Mesh) {
			m.Gateways["ingress"].Listeners[1].Name = "http-80"
		}, []string{
			`GM0303 error gateways/ingress.cue:1:1: gateways.ingress.listeners[1].name: listener name "http-80" is also used by listeners[0]`,
		}},
	})
}

func TestMTLS(t *testing.T) {
	runCases(t, []checkCase{
		{"proxyless-none caller of a STRICT service", func(m *model.Mesh) {
			m.Services["legacy"] = &model.Service{
				Name: "legacy", Namespace: "bookinfo", ServiceAccount: "legacy", Proxy: model.ProxyNone,
				Ports: []model.Port{httpPort(8080)}, DependsOn: []string{"reviews"},
			}
			at(m, "services.legacy", 1, 1)
			at(m, "services.legacy.dependsOn[0]", 4, 15)
			at(m, "services.reviews.authorization.allow", 40, 3)
		}, []string{
			`GM0501 info services/legacy.cue:1:1: services.legacy: service "legacy" is not reached by any route, gateway or dependsOn`,
			`GM0401 error services/legacy.cue:4:15: services.legacy.dependsOn[0]: service "legacy" has no proxy and cannot present a mesh certificate, but "reviews" requires mtls "STRICT"`,
			`GM0403 warning services/reviews.cue:40:3: services.reviews.authorization.allow: no allow rule admits service "legacy", which lists "reviews" in dependsOn; its requests will fail with 403`,
		}},
		{"none caller of a PERMISSIVE service without authorization", func(m *model.Mesh) {
			m.Services["ratings"].MTLS = model.MTLSPermissive
			m.Services["ratings"].Authorization = nil
			m.Services["legacy"] = &model.Service{
				Name: "legacy", Namespace: "bookinfo", ServiceAccount: "legacy", Proxy: model.ProxyNone,
				Ports: []model.Port{httpPort(8080)}, DependsOn: []string{"ratings"},
			}
			m.Services["reviews"].DependsOn = []string{"ratings", "legacy"}
		}, nil},
		{"identity rules on a DISABLE service", func(m *model.Mesh) {
			m.Services["ratings"].MTLS = model.MTLSDisable
			at(m, "services.ratings.authorization.allow[0].from", 12, 12)
		}, []string{
			`GM0403 warning services/ratings.cue:1:1: services.ratings.authorization.allow: no allow rule admits service "reviews", which lists "ratings" in dependsOn; its requests will fail with 403`,
			`GM0401 error services/ratings.cue:12:12: services.ratings.authorization.allow[0].from: rule matches callers by identity, but mtls is "DISABLE", so callers present none`,
		}},
	})
}

func TestAuthz(t *testing.T) {
	runCases(t, []checkCase{
		{"unknown source service", func(m *model.Mesh) {
			m.Services["details"].Authorization.Allow[0].From[0].Service = "productpag"
			at(m, "services.details.authorization.allow[0].from[0].service", 14, 30)
			at(m, "services.details.authorization.allow", 13, 3)
		}, []string{
			`GM0403 warning services/details.cue:13:3: services.details.authorization.allow: no allow rule admits service "productpage", which lists "details" in dependsOn; its requests will fail with 403`,
			`GM0402 error services/details.cue:14:30: services.details.authorization.allow[0].from[0].service: unknown service "productpag"`,
		}},
		{"source names a gateway", func(m *model.Mesh) {
			m.Services["productpage"].Authorization = allowFrom(model.Source{Service: "ingress"})
		}, []string{
			`GM0402 error services/productpage.cue:1:1: services.productpage.authorization.allow[0].from[0].service: unknown service "ingress" (gateways are matched by namespace or principal)`,
			`GM0403 warning services/productpage.cue:1:1: services.productpage.authorization.allow: no allow rule admits gateway "ingress", which routes to "productpage"; its requests will fail with 403`,
		}},
		{"unknown namespace", func(m *model.Mesh) {
			m.Services["ratings"].Authorization.Allow = append(m.Services["ratings"].Authorization.Allow,
				model.AuthzRule{From: []model.Source{{Namespace: "monitoring"}}})
		}, []string{
			`GM0402 error services/ratings.cue:1:1: services.ratings.authorization.allow[1].from[0].namespace: unknown namespace "monitoring": no service or gateway runs in it`,
		}},
		{"deny rule rejects a declared caller", func(m *model.Mesh) {
			m.Services["reviews"].Authorization.Deny = []model.AuthzRule{{From: []model.Source{{Principal: "cluster.local/ns/bookinfo/sa/*"}}}}
			at(m, "services.reviews.authorization.deny[0]", 44, 5)
		}, []string{
			`GM0403 warning services/reviews.cue:44:5: services.reviews.authorization.deny[0]: deny rule rejects service "productpage", which lists "reviews" in dependsOn`,
		}},
		{"deny rule limited to a path does not warn", func(m *model.Mesh) {
			m.Services["reviews"].Authorization.Deny = []model.AuthzRule{{From: []model.Source{{Service: "productpage"}}, Paths: []string{"/admin"}}}
		}, nil},
		{"gateway caller not allowed", func(m *model.Mesh) {
			m.Services["productpage"].Authorization = allowFrom(model.Source{Principal: "cluster.local/ns/istio-system/sa/other"})
		}, []string{
			`GM0403 warning services/productpage.cue:1:1: services.productpage.authorization.allow: no allow rule admits gateway "ingress", which routes to "productpage"; its requests will fail with 403`,
		}},
		{"spiffe prefix and namespace sources admit callers", func(m *model.Mesh) {
			m.Services["productpage"].Authorization = allowFrom(model.Source{Principal: "spiffe://cluster.local/ns/istio-system/sa/ingress-gateway"})
			m.Services["reviews"].Authorization = allowFrom(model.Source{Principal: "*/sa/bookinfo-productpage"})
		}, nil},
		{"rule port the service lacks", func(m *model.Mesh) {
			m.Services["ratings"].Authorization.Allow[0].Ports = []int{9080, 9999}
			at(m, "services.ratings.authorization.allow[0].ports[1]", 12, 40)
		}, []string{
			`GM0404 warning services/ratings.cue:12:40: services.ratings.authorization.allow[0].ports[1]: port 9999 is not a port of service "ratings"`,
		}},
		{"authorization without a proxy", func(m *model.Mesh) {
			m.Services["ratings"].Proxy = model.ProxyNone
		}, []string{
			`GM0405 warning services/ratings.cue:1:1: services.ratings.authorization: service "ratings" has no proxy, so nothing enforces its authorization`,
		}},
	})
}

func TestReachability(t *testing.T) {
	orphan := func(name string, deps ...string) *model.Service {
		return &model.Service{Name: name, Namespace: "bookinfo", ServiceAccount: name, Proxy: model.ProxySidecar,
			Ports: []model.Port{httpPort(8080)}, DependsOn: deps}
	}
	runCases(t, []checkCase{
		{"service nothing reaches", func(m *model.Mesh) {
			m.Services["orphan"] = orphan("orphan")
		}, []string{
			`GM0501 info -: services.orphan: service "orphan" is not reached by any route, gateway or dependsOn`,
		}},
		{"dependsOn star reaches every other service", func(m *model.Mesh) {
			m.Services["orphan"] = orphan("orphan")
			m.Services["caller"] = orphan("caller", "*")
		}, []string{
			`GM0501 info -: services.caller: service "caller" is not reached by any route, gateway or dependsOn`,
		}},
		{"gateway without routes", func(m *model.Mesh) {
			m.Gateways["ingress"].Routes = nil
		}, []string{
			`GM0502 info gateways/ingress.cue:1:1: gateways.ingress: gateway "ingress" has no routes, so it serves nothing`,
			`GM0501 info services/productpage.cue:1:1: services.productpage: service "productpage" is not reached by any route, gateway or dependsOn`,
		}},
		{"egress gateway without routes still carries via traffic", func(m *model.Mesh) {
			m.Gateways["egress"].Routes = nil
		}, nil},
	})
}

func TestGatewayHosts(t *testing.T) {
	runCases(t, []checkCase{
		{"route host no listener serves", func(m *model.Mesh) {
			m.Gateways["ingress"].Routes[0].Hosts = []string{"shop.example.com"}
			at(m, "gateways.ingress.routes[0].hosts[0]", 19, 12)
		}, []string{
			`GM0205 error gateways/ingress.cue:19:12: gateways.ingress.routes[0].hosts[0]: host "shop.example.com" is not served by any listener of gateway "ingress"`,
		}},
		{"route host only on another port", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			g.Listeners[1].Hosts = []string{"secure.example.com"}
			g.Routes[0].Hosts = []string{"secure.example.com"}
			g.Routes[0].Port = 80
		}, []string{
			`GM0205 error gateways/ingress.cue:1:1: gateways.ingress.routes[0].hosts[0]: host "secure.example.com" is not served by any listener of gateway "ingress"`,
		}},
		{"wildcard listener serves subdomains", func(m *model.Mesh) {
			g := m.Gateways["ingress"]
			g.Listeners[0].Hosts = []string{"*.example.com"}
			g.Listeners[1].Hosts = []string{"*"}
		}, nil},
	})
}

func TestEndpointsAndNames(t *testing.T) {
	runCases(t, []checkCase{
		{"static version without endpoints", func(m *model.Mesh) {
			m.Services["reviews"].Versions["v3"].Endpoints = nil
			at(m, "services.reviews.versions.v3", 7, 5)
		}, []string{
			`GM0503 warning services/reviews.cue:7:5: services.reviews.versions.v3: version "v3" of service "reviews" has no endpoints and discovery is "static"`,
		}},
		{"kubernetes discovery needs no endpoints", func(m *model.Mesh) {
			m.Services["reviews"].Discovery = "kubernetes"
			m.Services["reviews"].Versions["v3"].Endpoints = nil
		}, nil},
		{"static external without endpoints", func(m *model.Mesh) {
			m.External["googleapis"].Resolution = "STATIC"
		}, []string{
			`GM0503 warning external/googleapis.cue:1:1: external.googleapis.endpoints: external service "googleapis" has resolution "STATIC" but no endpoints`,
		}},
		{"egress gateway in use without endpoints", func(m *model.Mesh) {
			m.Gateways["egress"].Endpoints = nil
		}, []string{
			`GM0503 warning gateways/egress.cue:1:1: gateways.egress.endpoints: egress gateway "egress" has no endpoints, so sidecars cannot send external traffic through it`,
		}},
		{"route name used twice", func(m *model.Mesh) {
			m.Services["reviews"].Routes[1].Name = "jason"
			at(m, "services.reviews.routes[1].name", 25, 9)
		}, []string{
			`GM0303 error services/reviews.cue:25:9: services.reviews.routes[1].name: route name "jason" is also used by routes[0]`,
		}},
	})
}

func TestEgressHosts(t *testing.T) {
	runCases(t, []checkCase{
		{"external host the egress gateway does not listen for", func(m *model.Mesh) {
			m.External["googleapis"].Hosts = append(m.External["googleapis"].Hosts, "storage.googleapis.com")
			at(m, "external.googleapis.hosts[1]", 2, 34)
		}, []string{
			`GM0205 error external/googleapis.cue:2:34: external.googleapis.hosts[1]: host "storage.googleapis.com" is not served by any listener of egress gateway "egress"`,
		}},
		{"gateway without http listener", func(m *model.Mesh) {
			m.Gateways["egress"].Listeners[0].Protocol = model.ProtocolTLS
			m.Gateways["egress"].Listeners[0].Port = 443
			m.External["googleapis"].Ports = []model.Port{{Name: "tls", Number: 443, Protocol: model.ProtocolTLS, TargetPort: 443}}
			m.Gateways["egress"].Routes = nil
		}, nil},
		// Egress routes apply to the hosts of the externals routed through
		// the gateway (policies/egress.go): render would never honour these.
		{"egress route on a tls external port", func(m *model.Mesh) {
			addStripe(m)
			g := m.Gateways["egress"]
			g.Routes[0].Port = 80
			g.Routes = append(g.Routes, model.Route{Name: "stripe", Port: 443, Hosts: []string{"api.stripe.com"}, To: []model.Destination{{External: "stripe", Weight: 100}}})
			at(m, "gateways.egress.routes[1].hosts[0]", 20, 12)
		}, []string{
			`GM0202 error gateways/egress.cue:20:12: gateways.egress.routes[1].hosts[0]: external host "api.stripe.com" on port 443 is "tls": egress gateway "egress" forwards it as a stream (tcp_proxy), so this HTTP route never applies to it`,
		}},
		{"egress route without hosts on a tls external port", func(m *model.Mesh) {
			addStripe(m)
			g := m.Gateways["egress"]
			g.Routes[0].Port = 80
			g.Routes = append(g.Routes, model.Route{Name: "stripe", Port: 443, To: []model.Destination{{External: "stripe", Weight: 100}}})
			at(m, "gateways.egress.routes[1].port", 20, 9)
		}, []string{
			`GM0202 error gateways/egress.cue:20:9: gateways.egress.routes[1].port: external host "api.stripe.com" on port 443 is "tls": egress gateway "egress" forwards it as a stream (tcp_proxy), so this HTTP route never applies`,
		}},
		{"egress route port no external has", func(m *model.Mesh) {
			g := m.Gateways["egress"]
			g.Listeners = append(g.Listeners, model.GatewayListener{Name: "http-8080", Port: 8080, Protocol: model.ProtocolHTTP, Hosts: []string{"www.googleapis.com"}})
			g.Routes[0].Port = 8080
			at(m, "gateways.egress.routes[0].port", 12, 9)
		}, []string{
			`GM0202 error gateways/egress.cue:12:9: gateways.egress.routes[0].port: no external service routed through egress gateway "egress" has port 8080, so the route never applies`,
		}},
		{"egress route host no external has", func(m *model.Mesh) {
			g := m.Gateways["egress"]
			g.Listeners[0].Hosts = []string{"*.googleapis.com"}
			g.Routes[0].Hosts = []string{"*.googleapis.com"}
			at(m, "gateways.egress.routes[0].hosts[0]", 12, 12)
		}, []string{
			`GM0205 error gateways/egress.cue:12:12: gateways.egress.routes[0].hosts[0]: host "*.googleapis.com" is not a host of any external service routed through egress gateway "egress", so the route never applies to it`,
		}},
		{"egress route for an http host", func(m *model.Mesh) {
			addStripe(m)
			g := m.Gateways["egress"]
			g.Routes[0].Hosts = []string{"www.googleapis.com"}
			g.Routes[0].Port = 80
		}, nil},
	})
}

// addStripe routes a tls external through the egress gateway, with an
// https listener (routable by the listener rule) on its port.
func addStripe(m *model.Mesh) {
	m.External["stripe"] = &model.External{
		Name: "stripe", Hosts: []string{"api.stripe.com"}, Resolution: "DNS", Via: "egress",
		Ports: []model.Port{{Name: "tls", Number: 443, Protocol: model.ProtocolTLS, TargetPort: 443}},
	}
	g := m.Gateways["egress"]
	g.Listeners = append(g.Listeners, model.GatewayListener{Name: "https-443", Port: 443, Protocol: model.ProtocolHTTPS, Hosts: []string{"api.stripe.com"}})
}
