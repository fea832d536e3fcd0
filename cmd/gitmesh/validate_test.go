package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// runCLI runs the real CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// copyExample copies examples/NAME into a temp dir and returns its path.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", name)
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// edit replaces old with new in one file of a copied repo, failing if old
// is not there (so a changed example cannot silently void a test).
func edit(t *testing.T, dir, file, old, new string) {
	t.Helper()
	path := filepath.Join(dir, file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestValidateExamples(t *testing.T) {
	for _, ex := range []string{"bookinfo", "minimal", "grpc-canary"} {
		t.Run(ex, func(t *testing.T) {
			code, out, errOut := runCLI(t, "validate", filepath.Join("..", "..", "examples", ex))
			if code != exitOK {
				t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, line := range strings.Split(out, "\n") {
				// GM0601 names the gateway credentials serve will need:
				// validate has no credentials dir, so it cannot know.
				if strings.Contains(line, " error ") || strings.Contains(line, " warning ") && !strings.Contains(line, " warning GM0601: ") {
					t.Errorf("findings in a clean example:\n%s", out)
				}
			}
		})
	}
}

// TestValidateBrokenCopies is the acceptance list: each broken copy
// of bookinfo exits 1 and names the file, line, column and code.
func TestValidateBrokenCopies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string // exact finding lines, paths relative to the repo
	}{
		{
			name: "weights sum to 90",
			break_: func(t *testing.T, dir string) {
				edit(t, dir, "services/reviews.cue", `{version: "v3", weight: 50}`, `{version: "v3", weight: 40}`)
			},
			want: []string{`services/reviews.cue:32:4: error GM0201: services.reviews.routes[1].to: weights sum to 90, want 100`},
		},
		{
			name: "route to an unknown version",
			break_: func(t *testing.T, dir string) {
				edit(t, dir, "services/reviews.cue", `to: [{version: "v2"}]`, `to: [{version: "v9"}]`)
			},
			want: []string{`services/reviews.cue:26:10: error GM0102: services.reviews.routes[0].to[0].version: unknown version "v9" of service "reviews"`},
		},
		{
			name: "port out of range",
			break_: func(t *testing.T, dir string) {
				edit(t, dir, "services/ratings.cue", `number: 9080}`, `number: 70000}`)
			},
			want: []string{`services/ratings.cue:5:25: error GM0002: services.ratings.ports[0].number: invalid value 70000 (out of bound <=65535)`},
		},
		{
			name: "symlink to /etc/passwd",
			break_: func(t *testing.T, dir string) {
				if err := os.Symlink("/etc/passwd", filepath.Join(dir, "services", "passwd.cue")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{`services/passwd.cue: error GM0006: symlink to "/etc/passwd" leaves the repository`},
		},
		{
			name: "2 MiB file",
			break_: func(t *testing.T, dir string) {
				big := bytes.Repeat([]byte("a"), 2<<20)
				if err := os.WriteFile(filepath.Join(dir, "services", "big.cue"), big, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{`services/big.cue: error GM0004: file is 2097152 bytes, limit is 1048576`},
		},
		{
			name: "syntax error",
			break_: func(t *testing.T, dir string) {
				edit(t, dir, "services/ratings.cue", "timeout: \"3s\"\n", "timeout: \"3s\"\n\t\tretries: {attempts: 3\n")
			},
			want: []string{
				`services/ratings.cue:21:3: error GM0001: missing ',' in struct literal`,
				`services/ratings.cue:26:3: error GM0001: expected '}', found 'EOF'`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyExample(t, "bookinfo")
			tc.break_(t, dir)
			code, out, errOut := runCLI(t, "validate", dir)
			if code != exitFindings {
				t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.Contains(line, ": error GM") {
					got = append(got, strings.TrimPrefix(line, filepath.ToSlash(dir)+"/"))
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}

			// The JSON form carries the same finding, repo-relative.
			code, out, _ = runCLI(t, "validate", dir, "-o", "json")
			if code != exitFindings {
				t.Fatalf("-o json: exit %d, want 1", code)
			}
			var rep validateReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("-o json output does not parse: %v\n%s", err, out)
			}
			if rep.Valid || rep.Errors != len(tc.want) {
				t.Errorf("-o json: valid=%v errors=%d, want false and %d", rep.Valid, rep.Errors, len(tc.want))
			}
			var first model.Diagnostic
			for _, d := range rep.Diagnostics {
				if d.Severity == model.SeverityError {
					first = d
					break
				}
			}
			if !strings.HasPrefix(tc.want[0], first.Pos.String()+":") {
				t.Errorf("-o json: first position %s, want the one in %q", first.Pos, tc.want[0])
			}
		})
	}
}

// TestValidateRunsRender: validate and render run the same pipeline, so a
// revision one refuses the other refuses with the same finding at the same
// position. A bad RE2 regex is found by the loader at the value; render's
// own check (GM0808) is the net behind it.
func TestValidateRunsRender(t *testing.T) {
	dir := copyExample(t, "bookinfo")
	edit(t, dir, "services/reviews.cue", `headers: "end-user": exact: "jason"`, `headers: "end-user": regex: "jason(("`)
	want := `services/reviews.cue:25:34: error GM0002: services.reviews.routes[0].match[0].headers."end-user".regex: invalid regex "jason((": missing closing )`
	code, out, errOut := runCLI(t, "validate", dir)
	if code != exitFindings {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, want) {
		t.Errorf("validate: no positioned finding for the bad regex, want %q in:\n%s", want, out)
	}
	code, _, errOut = runCLI(t, "render", dir, "--list")
	if code != exitFindings || !strings.Contains(errOut, want) {
		t.Errorf("render: exit %d, want 1 with the same finding; stderr:\n%s", code, errOut)
	}
}

// TestValidateWarnsAboutCredentials: a gateway credential is what only
// serve can check; validate names what serve will need.
func TestValidateWarnsAboutCredentials(t *testing.T) {
	_, out, _ := runCLI(t, "validate", filepath.Join("..", "..", "examples", "bookinfo"))
	want := `examples/bookinfo/gateways/ingress.cue:13:26: warning GM0601: gateways."bookinfo-gateway".listeners[1].tls.credentialName: serve needs credential "bookinfo-credential" in --credentials-dir (DIR/bookinfo-credential/{tls.crt,tls.key})`
	if !strings.Contains(out, want) {
		t.Errorf("output lacks\n%s\ngot:\n%s", want, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", "no/such/dir"}, "no/such/dir: no such directory"},
		{[]string{"validate", "-o", "xml", "."}, `--output: want text, json or yaml (got "xml")`},
		{[]string{"validate", "a", "b"}, "accepts at most 1 arg"},
		{[]string{"render", "../../examples/bookinfo"}, "set exactly one of --list, --proxy ID or -o hosts"},
		{[]string{"render", "../../examples/bookinfo", "--list", "-o", "hosts"}, "set exactly one of --list, --proxy ID or -o hosts"},
		{[]string{"serve", "--xds-insecure"}, "set exactly one of --repo URL or --dir DIR"},
		{[]string{"serve", "--dir", "../../examples/bookinfo", "--ca-cert", "intermediate.pem"}, "a plug-in CA needs all of its certificate, key and chain files"},
		{[]string{"bootstrap", "--proxy", "reviews"}, `node id "reviews" is not CLASS/INSTANCE`},
		{[]string{"nosuchcommand"}, `unknown command "nosuchcommand"`},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestRenderList(t *testing.T) {
	code, out, errOut := runCLI(t, "render", "../../examples/bookinfo", "--list")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := []string{
		"egress/egress", "ingress/bookinfo-gateway",
		"sidecar/default/details/v1", "sidecar/default/productpage/v1", "sidecar/default/ratings/v1",
		"sidecar/default/reviews/v1", "sidecar/default/reviews/v2", "sidecar/default/reviews/v3",
	}
	if got := strings.Fields(out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("classes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRenderProxyDump(t *testing.T) {
	// A full node id resolves to its class; the dump is Envoy's config_dump shape.
	code, out, errOut := runCLI(t, "render", "../../examples/bookinfo", "--proxy", "sidecar/default/reviews/v2/reviews-v2-7f9c")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var dump struct {
		Configs []map[string]any `json:"configs"`
	}
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	var types []string
	for _, c := range dump.Configs {
		types = append(types, c["@type"].(string))
	}
	for _, want := range []string{"ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump", "EndpointsConfigDump"} {
		if !strings.Contains(strings.Join(types, " "), want) {
			t.Errorf("dump has no %s: %v", want, types)
		}
	}
	if !strings.Contains(out, `"outbound|9080|v1|ratings.default.svc.cluster.local"`) {
		t.Error("reviews v2 does not see ratings' v1 cluster")
	}
	if strings.Contains(out, "details.default.svc.cluster.local") {
		t.Error("reviews v2 sees details, which it does not depend on")
	}

	code, out, _ = runCLI(t, "render", "../../examples/bookinfo", "--proxy", "ingress/bookinfo-gateway", "-o", "yaml")
	if code != exitOK || !strings.Contains(out, "configs:") {
		t.Errorf("-o yaml: exit %d, output starts %q", code, out[:min(len(out), 80)])
	}

	// A broken repo does not render: findings on stderr, exit 1, stdout empty.
	dir := copyExample(t, "bookinfo")
	edit(t, dir, "services/reviews.cue", `{version: "v3", weight: 50}`, `{version: "v3", weight: 40}`)
	code, out, errOut = runCLI(t, "render", dir, "--list")
	if code != exitFindings || out != "" || !strings.Contains(errOut, "GM0201") {
		t.Errorf("broken repo: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
