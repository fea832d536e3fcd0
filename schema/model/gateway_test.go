package model

import "testing"

// TestStreamRoute pins which routes are stream routes, including a port
// shared by a terminated and a PASSTHROUGH listener.
func TestStreamRoute(t *testing.T) {
	g := &Gateway{Kind: GatewayIngress, Listeners: []GatewayListener{
		{Port: 80, Protocol: ProtocolHTTP},
		{Port: 443, Protocol: ProtocolHTTPS, Hosts: []string{"web.example.com"}, TLS: &GatewayTLS{Mode: TLSSimple}},
		{Port: 443, Protocol: ProtocolHTTPS, Hosts: []string{"db.example.com"}, TLS: &GatewayTLS{Mode: TLSPassthrough}},
		{Port: 5432, Protocol: ProtocolTCP},
		{Port: 9443, Protocol: ProtocolTLS, Hosts: []string{"git.example.com"}, TLS: &GatewayTLS{Mode: TLSSimple}},
	}}
	for _, tc := range []struct {
		name string
		r    Route
		want bool
	}{
		{"no port: HTTP", Route{}, false},
		{"http port", Route{Port: 80}, false},
		{"tcp port", Route{Port: 5432}, true},
		{"terminated tls port", Route{Port: 9443}, true},
		{"mixed port, passthrough host", Route{Port: 443, Hosts: []string{"db.example.com"}}, true},
		{"mixed port, terminated host", Route{Port: 443, Hosts: []string{"web.example.com"}}, false},
		{"mixed port, both hosts", Route{Port: 443, Hosts: []string{"db.example.com", "web.example.com"}}, false},
		{"mixed port, no hosts", Route{Port: 443}, false},
	} {
		if got := g.StreamRoute(tc.r); got != tc.want {
			t.Errorf("%s: StreamRoute = %v, want %v", tc.name, got, tc.want)
		}
	}
	g.Routes = []Route{{Port: 443}, {Port: 443, Hosts: []string{"db.example.com"}}, {Port: 5432}}
	if got := g.StreamRouteFor(443, "db.example.com"); got != 1 {
		t.Errorf("StreamRouteFor(443, db) = %d, want 1 (a route without hosts on a mixed port is HTTP)", got)
	}
	if got := g.StreamRouteFor(5432, "*"); got != 2 {
		t.Errorf("StreamRouteFor(5432, *) = %d, want 2", got)
	}
	eg := &Gateway{Kind: GatewayEgress, Listeners: []GatewayListener{{Port: 443, Protocol: ProtocolTLS}}}
	if eg.StreamRoute(Route{Port: 443}) {
		t.Error("egress gateways have no stream routes")
	}
}

// TestHTTPRouteApplies pins the host and port rule of gateway HTTP routes,
// shared by ingress listener hosts and egress external hosts.
func TestHTTPRouteApplies(t *testing.T) {
	g := &Gateway{Kind: GatewayIngress, Listeners: []GatewayListener{
		{Port: 80, Protocol: ProtocolHTTP},
		{Port: 5432, Protocol: ProtocolTCP},
	}}
	for _, tc := range []struct {
		name string
		r    Route
		port int
		host string
		want bool
	}{
		{"no port, no hosts", Route{}, 80, "a.example.com", true},
		{"same port", Route{Port: 80}, 80, "a.example.com", true},
		{"other port", Route{Port: 8080}, 80, "a.example.com", false},
		{"listed host", Route{Hosts: []string{"a.example.com"}}, 80, "a.example.com", true},
		{"unlisted host", Route{Hosts: []string{"b.example.com"}}, 80, "a.example.com", false},
		{"wildcard is not a pattern", Route{Hosts: []string{"*.example.com"}}, 80, "a.example.com", false},
		{"listener without hosts", Route{Hosts: []string{"b.example.com"}}, 80, "*", true},
		{"stream route", Route{Port: 5432}, 5432, "*", false},
	} {
		if got := g.HTTPRouteApplies(tc.r, tc.port, tc.host); got != tc.want {
			t.Errorf("%s: HTTPRouteApplies = %v, want %v", tc.name, got, tc.want)
		}
	}
}
