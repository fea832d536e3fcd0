package traffic

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Request is a request a traffic test or `gitmesh explain` sends.
type Request struct {
	model.Request
	// Headers are extra request headers by name.
	Headers map[string]string
	// Principal is the SPIFFE id the caller presents; "" is the identity
	// of the class the request leaves from.
	Principal string
}

// Outcome is what happens to a request: shares in percent of all
// requests sent.
type Outcome struct {
	// To is the share routed to each destination ("reviews/v2", a whole
	// service "reviews" when no workload is known, an external's name),
	// whether or not the destination then lets it in.
	To map[string]float64 `json:"to,omitempty"`
	// Status is the share of requests answered with each status other
	// than the application's own: 403 RBAC, a fault's abort, 404 no route,
	// 503 no endpoints, a direct response's code.
	Status map[int]float64 `json:"status,omitempty"`
	// NoRoute is the share nothing routes (no listener, chain, virtual
	// host or route; a black-holed connection).
	NoRoute float64 `json:"noRoute,omitempty"`
	// Timeout and Retries are the policy of the route the caller's proxy
	// takes (the first routing decision).
	Timeout *model.Duration    `json:"timeout,omitempty"`
	Retries *model.TestRetries `json:"retries,omitempty"`
	// Hops is the trace.
	Hops []Hop `json:"hops"`
}

// MarshalJSON writes durations as Go duration strings ("10s"), the form
// mesh files use, instead of nanoseconds.
func (o *Outcome) MarshalJSON() ([]byte, error) {
	type plain Outcome
	type retries struct {
		Attempts      int    `json:"attempts"`
		PerTryTimeout string `json:"perTryTimeout,omitempty"`
	}
	out := struct {
		*plain
		Timeout string   `json:"timeout,omitempty"`
		Retries *retries `json:"retries,omitempty"`
	}{plain: (*plain)(o)}
	if o.Timeout != nil {
		out.Timeout = dur(*o.Timeout)
	}
	if r := o.Retries; r != nil {
		out.Retries = &retries{Attempts: r.Attempts}
		if r.PerTryTimeout != nil {
			out.Retries.PerTryTimeout = dur(*r.PerTryTimeout)
		}
	}
	return json.Marshal(out)
}

// Hop is one step of the trace.
type Hop struct {
	// Depth is the nesting under weighted splits, for display.
	Depth int `json:"depth"`
	// Share is the share of requests taking the step, in percent.
	Share float64 `json:"share"`
	// Class is the proxy class the step happens in.
	Class string `json:"class"`
	// Step says what kind of step: listener, filter chain, tls, hcm,
	// virtual host, route, fault, rbac, cluster, endpoints, destination …
	Step string `json:"step"`
	// Name is the Envoy resource or element name.
	Name string `json:"name,omitempty"`
	// Detail says why this one was chosen or what it did.
	Detail string `json:"detail,omitempty"`
	// Origin is the model path the step was rendered from, when known
	// ("services.reviews.routes[0]").
	Origin string `json:"origin,omitempty"`
	// Pos is Origin's position in the repository, filled by the caller
	// (file:line:col).
	Pos string `json:"pos,omitempty"`
}

// maxClassHops bounds how many proxies one request may pass (caller,
// gateway, destination): a loop in the config ends as an error.
const maxClassHops = 6

// at is where the evaluation is: one proxy, with what it knows.
type at struct {
	class string
	cfg   *Config
	// identity is what this proxy presents upstream over mutual TLS.
	identity string
	// peer is the downstream's verified identity (inbound side), or "".
	peer string
	// dest is the destination's name when this proxy is the destination's
	// (the workload behind it is reached).
	dest  string
	share float64
	// live is the fraction of share still in flight: a fault abort
	// answers part of the requests, which still count as routed where
	// the route sends them (To), but not in later statuses.
	live  float64
	depth int
	hops  int
	// caller is the proxy the request left from: its route sets the
	// outcome's timeout and retries.
	caller bool
}

type evaluator struct {
	cfgs    Configs
	w       *World
	req     Request
	headers map[string]string
	out     *Outcome
	// policyDone says the caller's route policy is recorded.
	policyDone bool
	// origins maps names back to model paths (origin.go).
	origins *origins
}

// Evaluate sends req from class through the rendered configs and returns
// what happens. An error means the request cannot be evaluated at all (no
// such class, a config the evaluator does not model); routing failures are
// outcomes, not errors.
func Evaluate(cfgs Configs, w *World, from string, req Request) (*Outcome, error) {
	cl, err := nodeid.ParseClass(from)
	if err != nil {
		return nil, err
	}
	cfg := cfgs(from)
	if cfg == nil {
		return nil, fmt.Errorf("class %q: not in the rendered config", from)
	}
	e := &evaluator{cfgs: cfgs, w: w, req: req, out: &Outcome{To: map[string]float64{}, Status: map[int]float64{}}, origins: newOrigins(w.m)}
	e.headers = requestHeaders(req)
	id := req.Principal
	if id == "" {
		id = w.Identity(from)
	}
	h := at{class: from, cfg: cfg, identity: id, share: 100, live: 1, caller: true}
	switch cl.Kind {
	case nodeid.KindSidecar:
		err = e.sidecarOutbound(h, cl.Namespace)
	case nodeid.KindProxyless:
		err = e.proxyless(h)
	default:
		c := e.clientConn(unknownAddr)
		l := listenerOnPort(cfg, req.Port)
		if l == nil {
			e.noRoute(h, "listener", "", fmt.Sprintf("no listener on port %d", req.Port))
			break
		}
		err = e.listener(h, l, c, "bound on the port the client dialled")
	}
	if err != nil {
		return nil, err
	}
	return e.out, nil
}

// requestHeaders are the headers routes and RBAC see: the test's own in
// lower case, and the pseudo-headers Envoy matches as headers (:method,
// :path, :authority, :scheme; Host is :authority in HTTP/2 terms, and
// Envoy matches a "host" header matcher against it).
func requestHeaders(req Request) map[string]string {
	h := map[string]string{}
	for k, v := range req.Headers {
		h[strings.ToLower(k)] = v
	}
	if req.TCP() {
		return h
	}
	h[":method"] = req.Method
	h[":path"] = req.Path
	h[":authority"] = req.Authority()
	h["host"] = req.Authority()
	h[":scheme"] = map[string]string{"grpc": "http"}[req.Scheme]
	if h[":scheme"] == "" {
		h[":scheme"] = req.Scheme
	}
	if req.Scheme == "grpc" {
		if _, ok := h["content-type"]; !ok {
			h["content-type"] = "application/grpc"
		}
	}
	return h
}

// clientConn is the connection the application opens to dstIP.
func (e *evaluator) clientConn(dstIP string) conn {
	c := conn{dstIP: dstIP, dstPort: e.req.Port, transport: "raw_buffer"}
	if e.req.Scheme == "https" {
		c.sni, c.transport, c.alpn = e.req.Host, "tls", []string{"h2", "http/1.1"}
	}
	return c
}

func (e *evaluator) hop(h at, step, name, detail, origin string) {
	e.out.Hops = append(e.out.Hops, Hop{Depth: h.depth, Share: round(h.share), Class: h.class, Step: step, Name: name, Detail: detail, Origin: origin})
}

func (e *evaluator) noRoute(h at, step, name, detail string) {
	e.hop(h, step, name, detail+": no route", "")
	e.out.NoRoute += h.share * h.live
}

func (e *evaluator) status(h at, code int, step, name, detail, origin string) {
	e.hop(h, step, name, detail, origin)
	e.out.Status[code] += h.share * h.live
}

// routed counts h's share as sent to dest, before dest's own proxy
// decides (its RBAC may still refuse it).
func (e *evaluator) routed(h at, dest string) { e.out.To[dest] += h.share }

// reached ends the trace at a workload; counted says the share was
// already counted as routed there.
func (e *evaluator) reached(h at, dest string, counted bool) {
	e.hop(h, "destination", dest, "the workload receives the request", e.origins.dest(dest))
	if !counted {
		e.routed(h, dest)
	}
}

// round keeps shares readable (weights are integers; faults are
// millionths).
func round(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 6, 64), 64)
	return v
}

// Shares formats a share map as "reviews/v1 50% reviews/v3 50%", sorted.
func Shares(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + pct(m[k])
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " ")
}

func pct(f float64) string { return strconv.FormatFloat(round(f), 'f', -1, 64) + "%" }
