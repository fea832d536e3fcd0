package istioimport

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func convertYAML(t *testing.T, y string) *Result {
	t.Helper()
	return Convert([]Source{{Name: "in.yaml", Data: []byte(y)}}, Options{})
}

// TestReportAndOutput: each case is a small input and what must (and must
// not) appear in the report and in the output files, one rule per case;
// the output must pass validate and render.
func TestReportAndOutput(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         string
		report     []string          // lines (or parts) the report must hold
		files      map[string]string // output file -> text it must hold
		notInFiles map[string]string // output file -> text it must not hold
	}{
		{
			name: "a field no converter reads is reported at its position",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a]
  http:
  - route:
    - destination: {host: a}
    futureField: 1
`,
			report: []string{"in.yaml:9:5: VirtualService default/a: spec.http[0].futureField: dropped: no gitmesh equivalent"},
		},
		{
			name: "an ALLOW rule with a condition gitmesh lacks is dropped, a DENY rule loses it",
			in: `apiVersion: v1
kind: Service
metadata: {name: a}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow}
spec:
  selector: {matchLabels: {app: a}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/b]}}]
  - to: [{operation: {methods: [GET]}}]
    when: [{key: "request.headers[x]", values: ["1"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny}
spec:
  selector: {matchLabels: {app: a}}
  action: DENY
  rules:
  - to: [{operation: {paths: [/admin*]}}]
    when: [{key: source.ip, values: [10.0.0.1]}]
`,
			report: []string{
				"in.yaml:14:12: AuthorizationPolicy default/allow: spec.rules[1].when[0]: dropped: conditions (when) have no gitmesh equivalent: the ALLOW rule is dropped (it allows less than in Istio)",
				"in.yaml:24:12: AuthorizationPolicy default/deny: spec.rules[0].when[0]: dropped: conditions (when) have no gitmesh equivalent: the DENY rule ignores the condition (it denies more than in Istio)",
			},
			files: map[string]string{"services/a.cue": `	authorization: {
		deny: [{
			paths: ["/admin*"]
		}]
		allow: [{
			from: [{principal: "cluster.local/ns/default/sa/b"}]
		}]
	}`},
		},
		{
			name: "a route after a catch-all gets no test, and the report says why",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
  - match: [{headers: {x: {exact: "1"}}}]
    route: [{destination: {host: a}}]
`,
			report: []string{"in.yaml:8:5: VirtualService default/a: spec.http[1]: no test: an earlier route (0) takes its requests first"},
		},
		{
			name: "a regex with no sample string is not tested",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a]
  http:
  - match: [{uri: {regex: "[^\\x00-\\x{10FFFF}]"}}]
    route: [{destination: {host: a}}]
`,
			report: []string{"in.yaml:7:5: VirtualService default/a: spec.http[0]: no test: no request matches it"},
		},
		{
			name: "a YAML syntax error keeps the documents before it",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a]
  http: [{route: [{destination: {host: a}}]}]
---
kind: [
`,
			report: []string{"in.yaml:8:1: skipped: YAML syntax error, the rest of the file is not read: did not find expected node content"},
			files:  map[string]string{"services/a.cue": "services: a:"},
		},
		{
			name: "one service name in two namespaces",
			in: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: x}
spec: {host: a}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: y}
spec: {host: a}
`,
			report: []string{`in.yaml:9:14: DestinationRule y/a: spec.host: dropped: service "a" of namespace "y": gitmesh service names are mesh-wide and "a" is already the service of namespace "x": the rule is not converted`},
		},
		{
			name: "unknown API versions and kinds are skipped, not fatal",
			in: `apiVersion: networking.istio.io/v2
kind: VirtualService
metadata: {name: a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: w}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec: {host: a}
`,
			report: []string{
				`in.yaml:1:1: VirtualService default/a: skipped: API version "networking.istio.io/v2" is not read (want v1, v1beta1 or v1alpha3)`,
				`in.yaml:5:1: WorkloadEntry default/w: skipped: kind "WorkloadEntry" of "networking.istio.io/v1" is not converted`,
			},
		},
		{
			name: "weights that do not sum to 100 are scaled",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a.default.svc.cluster.local]
  http:
  - route:
    - {destination: {host: a, subset: v1}, weight: 1}
    - {destination: {host: a, subset: v2}, weight: 3}
`,
			report: []string{
				"in.yaml:8:5: VirtualService default/a: spec.http[0].route: approximated: weights sum to 4: scaled to 100 as Istio does",
				`in.yaml:8:39: VirtualService default/a: spec.http[0].route[0].destination.subset: approximated: subset "v1" of "a" is defined by no DestinationRule in the input: version "v1" selects labels version: "v1"`,
			},
			files: map[string]string{"services/a.cue": `			{version: "v1", weight: 25},
			{version: "v2", weight: 75},`},
		},
		{
			name: "quoting comes from CUE's formatter",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a]
  http:
  - match: [{headers: {x-quote: {exact: "say \"hi\"\\n"}}}]
    route: [{destination: {host: a}}]
`,
			files: map[string]string{
				"services/a.cue":      `match: [{headers: "x-quote": exact: "say \"hi\"\\n"}]`,
				"tests/generated.cue": `headers: "x-quote": "say \"hi\"\\n"`,
			},
		},
		{
			name: "a VirtualService host the gateway does not serve is left out",
			in: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*.example.com"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a.example.com, other.org]
  gateways: [gw]
  http: [{route: [{destination: {host: a}}]}]
`,
			report: []string{`in.yaml:12:26: VirtualService default/a: spec.hosts[1]: dropped: host "other.org" is not served by gateway "gw" (on port 0): Istio ignores it there`},
			files:  map[string]string{"gateways/gw.cue": `hosts: ["a.example.com"]`},
		},
		{
			name: "ports the Kubernetes Service lacks are not kept",
			in: `apiVersion: v1
kind: Service
metadata: {name: a}
spec: {ports: [{name: http, port: 8080}, {name: grpc, port: 9090}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a]
  http:
  - match: [{port: 7070}]
    route: [{destination: {host: a, port: {number: 7070}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: a}}]}]
`,
			report: []string{
				`in.yaml:12:5: VirtualService default/a: spec.http[0]: approximated: port 7070 is not an HTTP port of service "a": the route applies to all its HTTP ports`,
				`in.yaml:12:5: VirtualService default/a: spec.http[0]: approximated: destination port 7070 is not a port of service "a": the port is left to gitmesh (the incoming one)`,
				`in.yaml:28:10: VirtualService default/edge: spec.http[0]: approximated: no destination port for service "a", which has several: port 8080, its first HTTP port`,
			},
			files: map[string]string{"gateways/gw.cue": `to: [{service: "a", port: 8080}]`},
		},
		{
			name: "two VirtualServices for one service",
			in: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: one}
spec:
  hosts: [a]
  http: [{match: [{uri: {prefix: /x}}], route: [{destination: {host: a}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: two}
spec:
  hosts: [a.default.svc.cluster.local]
  http: [{route: [{destination: {host: a}}]}]
`,
			report: []string{`in.yaml:12:11: VirtualService default/two: spec.hosts[0]: approximated: VirtualService default/one also routes "a": its routes are appended after theirs`},
		},
		{
			name: "an egress gateway that does not listen for the external host",
			in: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [other.example.com]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v}
spec:
  hosts: [api.example.com]
  gateways: [mesh]
  http: [{route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local}}]}]
`,
			report:     []string{`in.yaml:21:10: VirtualService default/v: spec.http[0]: dropped: egress gateway "egress" has no listener for api.example.com: external.ext.via is not set (sidecars call it directly)`},
			notInFiles: map[string]string{"external/ext.cue": "via"},
		},
		{
			name: "Sidecar egress hosts become dependsOn, the workload's over the namespace's",
			in: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec: {host: a}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec: {host: b}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  egress: [{hosts: ["./b.default.svc.cluster.local"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: b}
spec:
  workloadSelector: {labels: {app: b}}
  egress: [{hosts: ["*/*.example.com", "~/*"], port: {number: 443}}]
`,
			report: []string{"in.yaml:29:54: Sidecar default/b: spec.egress[0].port: dropped: gitmesh scopes by service, not by port"},
			files:  map[string]string{"services/a.cue": `dependsOn: ["b"]`, "services/b.cue": `dependsOn: ["ext"]`},
		},
		{
			name: "Deployments give services their identities; a principal no workload has is noted",
			in: `apiVersion: v1
kind: Service
metadata: {name: a}
spec: {selector: {app: a}, ports: [{name: http, port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: a-v1}
spec:
  template:
    metadata: {labels: {app: a, version: v1}}
    spec: {serviceAccountName: sa-a}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: orphan}
spec:
  template:
    metadata: {labels: {app: nothing}}
    spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a}
spec:
  selector: {matchLabels: {app: a}}
  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/sa-a, cluster.local/ns/default/sa/ghost]}}]}]
`,
			report: []string{
				`in.yaml:14:1: StatefulSet default/orphan: skipped: its pods match no Kubernetes Service of the input: their service account "default" is not used`,
				`in.yaml:27:76: AuthorizationPolicy default/a: spec.rules[0].from[0].source.principals[1]: note: principal "cluster.local/ns/default/sa/ghost" is the identity of no service or gateway of the input`,
			},
			files: map[string]string{"services/a.cue": `serviceAccount: "sa-a"`},
		},
		{
			name: "PeerAuthentication precedence: workload over namespace over mesh",
			in: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b-only}
spec:
  selector: {matchLabels: {app: b}}
  mtls: {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ns}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec: {host: a}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec: {host: b}
`,
			files: map[string]string{"mesh.cue": `mtls:                  "STRICT"`, "services/a.cue": `mtls: "PERMISSIVE"`, "services/b.cue": `mtls: "DISABLE"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := convertYAML(t, tc.in)
			rep := string(res.Report.Text())
			for _, want := range tc.report {
				if !strings.Contains(rep, want) {
					t.Errorf("report lacks\n  %s\ngot:\n%s", want, rep)
				}
			}
			for f, want := range tc.files {
				if !strings.Contains(string(res.Files[f]), want) {
					t.Errorf("%s lacks\n%s\ngot:\n%s", f, want, res.Files[f])
				}
			}
			for f, bad := range tc.notInFiles {
				if strings.Contains(string(res.Files[f]), bad) {
					t.Errorf("%s holds %q:\n%s", f, bad, res.Files[f])
				}
			}
			// Whatever was lost, what was written passes gitmesh's checks.
			if res.Converted > 0 {
				validateRepo(t, writeRepo(t, res, false))
			}
		})
	}
}

// TestSample: the generated string matches the whole expression, as
// Envoy's safe_regex requires; what has no sample is refused.
func TestSample(t *testing.T) {
	for _, re := range []string{`/api/v[0-9]+/items`, `(foo|bar)baz`, `a{3}b?`, `.*Chrome/[0-9]+.*`, `\d+\.\d+`, `^/x$`, `[A-Z][a-z]*`} {
		s, ok := sample(re)
		if !ok || !regexp.MustCompile(`^(?:`+re+`)$`).MatchString(s) {
			t.Errorf("sample(%q) = %q, %v", re, s, ok)
		}
	}
	for _, re := range []string{`[^\x00-\x{10FFFF}]`, `(`} {
		if s, ok := sample(re); ok {
			t.Errorf("sample(%q) = %q, want none", re, s)
		}
	}
}

// TestDeterministic: the same input converts to the same bytes.
func TestDeterministic(t *testing.T) {
	a, b := convertCase(t, "bookinfo"), convertCase(t, "bookinfo")
	if !bytes.Equal(archive(a), archive(b)) {
		t.Error("two conversions of bookinfo differ")
	}
}

// TestAliasBomb: YAML aliases nested ten deep (a "billion laughs") are
// walked once per node, not once per path.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("  hosts: [a]\n  http: [{route: [{destination: {host: a}, headers: *l10}], corsPolicy: *l10}]\n")
	done := make(chan *Result, 1)
	go func() { done <- convertYAML(t, b.String()) }()
	select {
	case res := <-done:
		if !strings.Contains(string(res.Report.Text()), "spec.http[0].route[0].headers: dropped") {
			t.Errorf("report:\n%s", res.Report.Text())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("conversion did not finish in 10s")
	}
}
