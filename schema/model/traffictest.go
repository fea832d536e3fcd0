package model

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// TrafficTest is a traffic test declared in the mesh repository (`tests:`):
// a request and what must happen to it on the rendered Envoy config.
// render/traffic evaluates it; the policies check its names.
type TrafficTest struct {
	Name string `json:"-"`
	// From is the proxy class the request leaves ("sidecar/NS/SVC/VER",
	// "ingress/GW" …).
	From string `json:"from"`
	// Request is "METHOD URL" or "tcp://HOST:PORT"; ParseRequest reads it.
	Request string `json:"request"`
	// Headers are request headers by name.
	Headers map[string]string `json:"headers,omitempty"`
	// Principal is the caller's SPIFFE id; "" means From's identity.
	Principal string `json:"principal,omitempty"`
	// Expect is the outcome the test asserts.
	Expect TrafficExpect `json:"expect"`
}

// TrafficExpect is what a traffic test asserts. Unset fields are not
// checked.
type TrafficExpect struct {
	// To is the share of requests per destination "SERVICE/VERSION",
	// "SERVICE" or an external's name, in percent.
	To map[string]float64 `json:"to,omitempty"`
	// Tolerance is how many percentage points a share may be off.
	Tolerance float64 `json:"tolerance,omitempty"`
	// Status is the status the caller gets (403 RBAC, 503 abort …); 0 to
	// 16 is a gRPC status (a grpcStatus fault abort). 0 is not checked.
	Status int `json:"status,omitempty"`
	// StatusPercent is the share of requests that get Status; 0 means 100.
	StatusPercent float64 `json:"statusPercent,omitempty"`
	// NoRoute says nothing routes the request.
	NoRoute bool `json:"noRoute,omitempty"`
	// Timeout is the route's timeout; nil is not checked.
	Timeout *Duration `json:"timeout,omitempty"`
	// Retries is the route's retry policy; nil is not checked.
	Retries *TestRetries `json:"retries,omitempty"`
}

// TestRetries is the retry policy a traffic test expects.
type TestRetries struct {
	Attempts      int       `json:"attempts"`
	PerTryTimeout *Duration `json:"perTryTimeout,omitempty"`
}

// Request is a parsed traffic test request.
type Request struct {
	// Method is the HTTP method; "" for TCP.
	Method string
	// Scheme is "http", "https", "grpc" or "tcp".
	Scheme string
	// Host is the host as the client names it (a name or an IP).
	Host string
	// Port is the destination port (the scheme's default when the URL
	// names none).
	Port int
	// Path is the path with its query ("/reviews/1?x=1"); "" for TCP.
	Path string
}

// TCP reports whether the request is a TCP connection, not an HTTP request.
func (r Request) TCP() bool { return r.Scheme == "tcp" }

// Authority is Host:Port as an HTTP client sends it in Host/:authority
// (without the port when it is the scheme's default).
func (r Request) Authority() string {
	if (r.Scheme == "http" && r.Port == 80) || (r.Scheme == "https" && r.Port == 443) {
		return r.Host
	}
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// ParseRequest reads a traffic test request: "METHOD URL" with an http,
// https or grpc URL ("GET http://reviews:9080/reviews/1"), or
// "tcp://HOST:PORT". The error says what is wrong without the position;
// callers add it.
func ParseRequest(s string) (Request, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "tcp://"); ok {
		host, port, err := hostPort(rest, 0)
		if err != nil {
			return Request{}, err
		}
		if port == 0 {
			return Request{}, fmt.Errorf("tcp request %q: needs a port", s)
		}
		return Request{Scheme: "tcp", Host: host, Port: port}, nil
	}
	method, url, ok := strings.Cut(s, " ")
	if !ok || method == "" {
		return Request{}, fmt.Errorf("want \"METHOD URL\" or \"tcp://HOST:PORT\" (got %q)", s)
	}
	for _, c := range method {
		if c < 'A' || c > 'Z' {
			return Request{}, fmt.Errorf("method %q: want upper-case letters such as GET", method)
		}
	}
	url = strings.TrimSpace(url)
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return Request{}, fmt.Errorf("url %q: want SCHEME://HOST[:PORT][/PATH]", url)
	}
	def := map[string]int{"http": 80, "https": 443, "grpc": 80}[scheme]
	if def == 0 {
		return Request{}, fmt.Errorf("url %q: scheme %q: want http, https or grpc", url, scheme)
	}
	hp, path := rest, "/"
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hp, path = rest[:i], rest[i:]
		if path[0] == '?' {
			path = "/" + path
		}
	}
	host, port, err := hostPort(hp, def)
	if err != nil {
		return Request{}, fmt.Errorf("url %q: %w", url, err)
	}
	if strings.ContainsAny(path, " \t") {
		return Request{}, fmt.Errorf("url %q: path must not contain spaces", url)
	}
	return Request{Method: method, Scheme: scheme, Host: host, Port: port, Path: path}, nil
}

// hostPort splits HOST[:PORT]; def is the port when none is given.
func hostPort(s string, def int) (string, int, error) {
	if s == "" {
		return "", 0, fmt.Errorf("no host")
	}
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return strings.Trim(s, "[]"), def, nil
		}
		return "", 0, fmt.Errorf("host %q: %w", s, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 1 to 65535", ps)
	}
	if host == "" {
		return "", 0, fmt.Errorf("no host in %q", s)
	}
	return host, port, nil
}

// TestNames returns the traffic test names sorted.
func (m *Mesh) TestNames() []string { return sortedKeys(m.Tests) }
