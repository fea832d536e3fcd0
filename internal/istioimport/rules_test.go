package istioimport

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func convertYAML(t *testing.T, y string) *Result {
	t.Helper()
	return Convert([]Source{{Name: "in.yaml", Data: []byte(y)}}, Options{})
}

// TestReportAndOutput: each case is a small input and what must (and must
// not) appear in the report and in the output files, one rule per case.
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
