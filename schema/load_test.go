package schema

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/schema/model"
)

// diagLine renders a diagnostic the way the tests pin it down: code,
// severity, position, path and message.
func diagLine(d model.Diagnostic) string {
	return d.Code + " " + d.Severity.String() + " " + d.Error()
}

func diagLines(ds model.Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, diagLine(d))
	}
	return out
}

func TestLoadDiagnostics(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"syntax", []string{
			"GM0001 error services/reviews.cue:5:10: missing ',' in list literal",
			"GM0001 error services/reviews.cue:6:1: expected operand, found '}'",
		}},
		{"wrongtype", []string{
			`GM0002 error services/reviews.cue:4:25: services.reviews.ports[0].number: conflicting values "9080" and int (mismatched types string and int)`,
		}},
		{"port", []string{
			"GM0002 error services/reviews.cue:6:3: services.reviews.ports[0].number: invalid value 70000 (out of bound <=65535)",
		}},
		{"typo", []string{
			"GM0002 error services/reviews.cue:6:2: services.reviews.dependOn: field not allowed",
		}},
		{"missing", []string{
			"GM0003 error services/reviews.cue:3:11: services.reviews.ports: field is required but not present",
			"GM0003 error services/reviews.cue:5:46: services.reviews.routes[0].to[1].weight: field is required but not present",
		}},
		{"yaml", []string{
			`GM0002 error services/ratings.yaml:6:9: services.ratings.ports[0].protocol: invalid value "htp" (want one of "grpc", "http", "http2", "https", "tcp", "tls")`,
		}},
		{"guardrail", []string{
			"ACME001 warning services/reviews.cue:7:7: services.reviews.versions.v2.labels.owner: every version needs an owner label",
		}},
		{"guardraildef", []string{
			`GM0008 error policies/broken.cue:4:12: guardrails."bad-severity".severity: invalid value "fatal" (want one of "error", "info", "warning")`,
		}},
		{"package", []string{
			`GM0001 error services/reviews.cue:1:1: package "services", want "mesh"`,
		}},
		{"names", []string{
			`GM0002 error services/a.cue:3:7: mesh.mtls: invalid value "LOOSE" (want one of "DISABLE", "PERMISSIVE", "STRICT")`,
			`GM0002 error services/a.cue:4:11: services.Reviews: invalid value "Reviews" (want a DNS label: lower case letters, digits and '-')`,
			"GM0002 error services/a.cue:8:2: services.empty.ports: must not be empty",
			`GM0002 error services/a.cue:12:2: services.dup.namespace: conflicting values "b" and "a"`,
			`GM0002 error services/b.yaml:2:3: services.V1svc: invalid value "V1svc" (want a DNS label: lower case letters, digits and '-')`,
			`GM0002 error services/b.yaml:4:16: services.V1svc.versions.V1: invalid value "V1" (want a DNS label: lower case letters, digits and '-')`,
		}},
		// None of several alternatives set: CUE reports these only when
		// the entity has no harder error.
		{"exactlyone", []string{
			"GM0002 error services/abort.yaml:6:17: services.abort.routes[0].fault.abort: set exactly one of httpStatus or grpcStatus",
			`GM0002 error services/abort.yaml:8:28: services.abort.routes[1].match[0].headers."x-a": set exactly one of exact, prefix, regex or present`,
			"GM0002 error services/abort.yaml:10:23: services.abort.authorization.allow[0].from[0]: set exactly one of service, namespace or principal",
			`GM0002 error services/ports.cue:4:39: services.ports.ports[1].name: duplicate port name "http"`,
			"GM0002 error services/ports.cue:4:53: services.ports.ports[1].number: duplicate port number 80",
		}},
		{"multi", []string{
			`GM0002 error services/reviews.cue:4:2: services.reviews.proxy: invalid value "envoy" (want one of "none", "proxyless", "sidecar")`,
			"GM0002 error services/reviews.cue:8:12: services.reviews.routes[0].match[0].path: set exactly one of exact, prefix, regex or present",
			"GM0002 error services/reviews.cue:9:24: services.reviews.routes[0].to[0].weight: invalid value 101 (out of bound <=100)",
			`GM0002 error services/reviews.cue:10:3: services.reviews.routes[0].timeout: invalid value "soon" (want a duration like "1.5s" or "250ms")`,
			"GM0003 error services/reviews.cue:17:14: gateways.edge.listeners[0].tls: field is required but not present",
			"GM0003 error services/reviews.cue:17:76: gateways.edge.listeners[1].tls.credentialName: field is required but not present",
			"GM0003 error services/reviews.cue:19:11: external.db.endpoints: field is required but not present",
			`GM0002 error services/reviews.cue:24:25: extensions.bad.wasm.url: invalid value "ftp://x" (want an http:// or https:// URL: Envoy cannot pull oci:// images)`,
			`GM0002 error services/reviews.cue:24:41: extensions.bad.wasm.sha256: invalid value "abc" (want 64 lower case hex digits)`,
			"GM0002 error services/reviews.cue:25:1: Services: field not allowed",
		}},
		// Every number and duration fits the Envoy field it becomes,
		// checked at the value.
		{"bounds", []string{
			`GM0002 error services/pool.yaml:2:31: mesh.tracing.endpoint: invalid value "collector:65536" (want host:port with a port from 1 to 65535)`,
			"GM0002 error services/pool.yaml:8:9: services.pool.trafficPolicy.connectionPool.maxConnections: invalid value 4294967297 (out of bound <=4294967295)",
			`GM0002 error services/pool.yaml:10:9: services.pool.trafficPolicy.connectionPool.connectTimeout: must be greater than 0s (got "0s")`,
			"GM0002 error services/pool.yaml:12:9: services.pool.trafficPolicy.outlierDetection.consecutive5xxErrors: invalid value 4294967296 (out of bound <=4294967295)",
			`GM0002 error services/pool.yaml:13:9: services.pool.trafficPolicy.outlierDetection.baseEjectionTime: must be greater than 0s (got "0.0s")`,
			`GM0002 error services/pool.yaml:16:9: services.pool.routes[0].timeout: invalid value "999999999999h" (want a duration of at most 2562047h)`,
			`GM0002 error services/pool.yaml:17:32: services.pool.routes[0].retries.perTryTimeout: invalid value "2562048h" (want a duration of at most 2562047h)`,
			`GM0002 error services/pool.yaml:18:25: services.pool.routes[0].fault.delay.fixed: must be greater than 0s (got "0ms")`,
			"GM0002 error services/pool.yaml:22:5: extensions.stats.priority: invalid value 2147483648 (out of bound <=2147483647)",
		}},
		// Integers past int64 (YAML reads them as floats) are reported by
		// their bound, not by a decoder that cannot hold them.
		{"hugeint", []string{
			"GM0002 error services/a.json:3:55: services.a.routes[0].retries.attempts: invalid value 99999999999999999999999 (out of bound <=100)",
			"GM0002 error services/b.yaml:6:9: services.b.trafficPolicy.connectionPool.maxRequests: invalid value 99999999999999999999999 (out of bound <=4294967295)",
		}},
		{"yamlsyntax", []string{
			"GM0001 error services/a.yaml:3:5: did not find expected ',' or ']'",
			"GM0001 error services/b.yaml:4:1: found character that cannot start any token",
		}},
		{"jsonsyntax", []string{
			"GM0001 error services/a.json:2:45: invalid character ',' looking for beginning of object key string",
		}},
		// One finding at the value; the abort's "exactly one status"
		// alternative failed only because of it.
		{"faultpercent", []string{
			"GM0002 error services/a.yaml:9:13: services.a.routes[0].fault.abort.percent: invalid value 150 (out of bound <=100)",
		}},
		{"regex", []string{
			`GM0002 error services/a.cue:6:18: services.a.routes[0].match[0].path.regex: invalid regex "/api/(v1": missing closing )`,
			`GM0002 error services/a.cue:6:58: services.a.routes[0].match[1].headers."x-user".regex: invalid regex "^(?!admin)": invalid or unsupported Perl syntax "(?!" (RE2 has no lookaround)`,
		}},
		// Addresses and the VIP range are checked at the value, in Go.
		{"vips", []string{
			`GM0002 error services/a.cue:3:7: mesh.vipRange: must have no host bits set (got "240.240.0.1/16", want "240.240.0.0/16")`,
			`GM0002 error services/a.cue:7:28: services.a.addresses[1]: must be an IPv4 or IPv6 address (got "10.96.0.300")`,
			`GM0002 error services/a.cue:7:43: services.a.addresses[2]: must be a unicast address a workload can dial (not unspecified, loopback, link-local, multicast or broadcast) (got "127.0.0.1")`,
		}},
	} {
		for _, plain := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: "/plain", false: "/general"}[plain], func(t *testing.T) {
				_, diags, err := LoadDir(context.Background(), filepath.Join("testdata", "bad", tc.name), pathOptions(plain))
				if err != nil {
					t.Fatalf("LoadDir: %v", err)
				}
				if d := cmp.Diff(tc.want, diagLines(diags)); d != "" {
					t.Errorf("diagnostics (-want +got):\n%s", d)
				}
			})
		}
	}
}

// pathOptions picks the loader's plain path (if it applies) or forces the
// general one.
func pathOptions(plain bool) Options {
	var o Options
	o.tune.generalPath = !plain
	return o
}

func TestLoadUnsafeFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		opts  Options
		want  []string
	}{
		{
			name: "symlink to /etc/passwd",
			setup: func(t *testing.T, dir string) {
				must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "services", "passwd.cue")))
			},
			want: []string{`GM0006 error services/passwd.cue: symlink to "/etc/passwd" leaves the repository`},
		},
		{
			name: "relative symlink out of the repository",
			setup: func(t *testing.T, dir string) {
				must(t, os.Symlink("../../outside.cue", filepath.Join(dir, "services", "out.cue")))
			},
			want: []string{`GM0006 error services/out.cue: symlink to "../../outside.cue" leaves the repository`},
		},
		{
			name: "symlink inside the repository is read",
			setup: func(t *testing.T, dir string) {
				must(t, os.Symlink("reviews.cue", filepath.Join(dir, "services", "alias.cue")))
			},
		},
		{
			name: "2 MiB file",
			setup: func(t *testing.T, dir string) {
				big := "package mesh\n\n// " + strings.Repeat("x", 2<<20) + "\n"
				must(t, os.WriteFile(filepath.Join(dir, "services", "big.cue"), []byte(big), 0o644))
			},
			want: []string{"GM0004 error services/big.cue: file is 2097170 bytes, limit is 1048576"},
		},
		{
			name: "repository over its total size",
			setup: func(t *testing.T, dir string) {
				must(t, os.WriteFile(filepath.Join(dir, "services", "zz.cue"), []byte("package mesh\n"), 0o644))
			},
			opts: Options{MaxTotalSize: 100},
			want: []string{"GM0005 error services/reviews.cue: repository exceeds 100 bytes at this file"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.MkdirAll(filepath.Join(dir, "services"), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, "services", "reviews.cue"), []byte(`package mesh

services: reviews: {
	ports: [{name: "http", number: 9080}]
	versions: v1: endpoints: [{address: "10.0.0.1"}]
}
`), 0o644))
			tc.setup(t, dir)
			m, diags, err := LoadDir(context.Background(), dir, tc.opts)
			if err != nil {
				t.Fatalf("LoadDir: %v", err)
			}
			if d := cmp.Diff(tc.want, diagLines(diags)); d != "" {
				t.Errorf("diagnostics (-want +got):\n%s", d)
			}
			if len(tc.want) == 0 && (m == nil || m.Services["reviews"] == nil) {
				t.Errorf("service reviews did not load")
			}
		})
	}
}

func TestLoadTimeout(t *testing.T) {
	fsys := meshgen.Generate(2000, meshgen.Options{Seed: 1})
	start := time.Now()
	m, diags, err := Load(context.Background(), fsys, Options{Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if m != nil || len(diags) != 1 || diags[0].Code != CodeTimeout {
		t.Fatalf("got mesh %v and %v, want only a %s", m != nil, diags, CodeTimeout)
	}
	if !strings.HasPrefix(diags[0].Message, "evaluation did not finish within 20ms") {
		t.Errorf("message %q", diags[0].Message)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Load returned after %v", took)
	}
}

func TestLoadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, diags, err := Load(ctx, meshgen.Generate(500, meshgen.Options{}), Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// Cancelled before any entity: the finding still names a file.
	if len(diags) != 1 || diags[0].Code != CodeTimeout || !strings.HasPrefix(diags[0].Message, "evaluation cancelled") || !diags[0].Pos.IsValid() {
		t.Fatalf("got %v, want one positioned %s evaluation cancelled", diags, CodeTimeout)
	}
}

// TestLoadGenerated loads meshgen output through both paths: it must be
// valid, and the paths must agree.
func TestLoadGenerated(t *testing.T) {
	for _, opt := range []meshgen.Options{{Seed: 1}, {Seed: 2, Unscoped: true, Protocol: "grpc"}} {
		var first *model.Mesh
		for _, plain := range []bool{true, false} {
			m, diags, err := Load(context.Background(), meshgen.Generate(40, opt), pathOptions(plain))
			if err != nil || len(diags) > 0 {
				t.Fatalf("Load(%+v): %v %v", opt, err, diags)
			}
			if len(m.Services) != 40 || len(m.Gateways) != 1 {
				t.Fatalf("got %d services and %d gateways", len(m.Services), len(m.Gateways))
			}
			if first == nil {
				first = m
			} else if d := cmp.Diff(first, m, cmpopts.IgnoreFields(model.Mesh{}, "Sources")); d != "" {
				t.Errorf("paths disagree (-plain +general):\n%s", d)
			}
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDecodeMessage checks the safety net behind the schema's bounds: a
// number the model cannot hold is described without Go type names.
func TestDecodeMessage(t *testing.T) {
	var s model.Service
	err := json.Unmarshal([]byte(`{"ports": [{"number": 99999999999999999999999}]}`), &s)
	if err == nil {
		t.Fatal("no error")
	}
	if got, want := decodeMessage(err), `field "number": number 99999999999999999999999 out of range`; got != want {
		t.Errorf("decodeMessage = %q, want %q", got, want)
	}
}
