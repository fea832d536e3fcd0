package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// TestFlagBounds runs every command with a nonsense duration, size, TTL or
// enum value through the real CLI: each is a usage error (exit 2) naming
// the flag and the value, before the command does anything (the state dirs
// and mesh directories named here do not even exist).
func TestFlagBounds(t *testing.T) {
	mesh := t.TempDir()
	nowhere := filepath.Join(t.TempDir(), "nowhere")
	node := "sidecar/default/reviews/v1/r-0"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--dir", mesh, "--interval", "0s"}, `--interval: must be at least 1s (got "0s")`},
		{[]string{"serve", "--dir", mesh, "--interval", "-5s"}, `--interval: must be at least 1s (got "-5s")`},
		{[]string{"serve", "--dir", mesh, "--interval", "10ms"}, `--interval: must be at least 1s (got "10ms"): polling more often`},
		{[]string{"serve", "--dir", mesh, "--eval-timeout", "0s"}, `--eval-timeout: must be greater than 0s (got "0s")`},
		{[]string{"serve", "--dir", mesh, "--max-file-size", "0"}, `--max-file-size: must be greater than 0 (got "0")`},
		{[]string{"serve", "--dir", mesh, "--max-repo-size", "-1"}, `--max-repo-size: must be greater than 0 (got "-1")`},
		{[]string{"serve", "--dir", mesh, "--workload-cert-ttl", "1s"}, `--workload-cert-ttl: must be at least 10m0s (got "1s"): shorter certificates`},
		{[]string{"serve", "--dir", mesh, "--drift-interval", "0s"}, `--drift-interval: must be greater than 0s`},
		{[]string{"serve", "--dir", mesh, "--drift-stale-after", "-1m"}, `--drift-stale-after: must be greater than 0s (got "-1m0s")`},
		{[]string{"serve", "--dir", mesh, "--drift-expiry-warning", "0s"}, `--drift-expiry-warning: must be greater than 0s`},
		{[]string{"validate", mesh, "--eval-timeout", "-1s"}, `--eval-timeout: must be greater than 0s (got "-1s")`},
		{[]string{"validate", mesh, "--max-file-size", "-1"}, `--max-file-size: must be greater than 0 (got "-1")`},
		{[]string{"validate", mesh, "-o", "xml"}, `--output: want text, json or yaml (got "xml")`},
		{[]string{"render", mesh, "--list", "--max-repo-size", "0"}, `--max-repo-size: must be greater than 0 (got "0")`},
		{[]string{"render", mesh, "--list", "-o", "text"}, `--output: want json, yaml or hosts (got "text")`},
		{[]string{"check", mesh, "--base", "main", "--eval-timeout", "0s"}, `--eval-timeout: must be greater than 0s`},
		{[]string{"check", mesh, "--base", "main", "-o", "xml"}, `--output: want text, json, markdown, sarif or github (got "xml")`},
		{[]string{"certs", "rotate-root", "--state-dir", nowhere, "--overlap", "-5h"}, `--overlap: must be greater than 0s (got "-5h0m0s")`},
		{[]string{"certs", "issue", "--proxy", node, "--dir", mesh, "--out", nowhere, "--state-dir", nowhere, "--ttl", "-1h"}, `--ttl: must be at least 10m0s (got "-1h0m0s")`},
		{[]string{"certs", "issue", "--proxy", node, "--dir", mesh, "--out", nowhere, "--state-dir", nowhere, "--ttl", "1m"}, `--ttl: must be at least 10m0s (got "1m0s")`},
		{[]string{"status", "--timeout", "0s"}, `--timeout: must be greater than 0s (got "0s")`},
		{[]string{"status", "-o", "table"}, `--output: want text, json or yaml (got "table")`},
		{[]string{"status", "--server", "127.0.0.1"}, `--server: want host:port or an http(s) URL (got "127.0.0.1")`},
		{[]string{"status", "--server", "ftp://127.0.0.1:21"}, `--server: want host:port or an http(s) URL (got "ftp://127.0.0.1:21")`},
		{[]string{"bootstrap", "--proxy", node, "--kind", "istio"}, `--kind: want envoy or grpc (got "istio")`},
		{[]string{"bootstrap", "--proxy", node, "--format", "istio"}, `--kind: want envoy or grpc (got "istio")`},
		{[]string{"bootstrap", "--proxy", node, "--admin-port", "0"}, `--admin-port: must be greater than 0 (got "0")`},
		{[]string{"bootstrap", "--proxy", node, "--admin-port", "70000"}, `--admin-port: must be at most 65535 (got "70000")`},
		{[]string{"bootstrap", "--proxy", node, "--refresh-interval", "0s"}, `--refresh-interval: must be greater than 0s`},
		{[]string{"version", "--log-format", "xml"}, `--log-format: want text or json (got "xml")`},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("gitmesh %s: exit %d, stderr %q; want exit 2 and %q\n%s", strings.Join(tc.args, " "), code, errOut, tc.want, out)
		}
	}
	if _, err := os.Stat(nowhere); !os.IsNotExist(err) {
		t.Errorf("a refused command created %s: %v", nowhere, err)
	}
}

// TestFlagBoundsFromEnv: a GITMESH_* variable is held to the same bounds as
// the flag, and the error names the variable.
func TestFlagBoundsFromEnv(t *testing.T) {
	mesh := t.TempDir()
	for _, tc := range []struct{ env, value, want string }{
		{"GITMESH_INTERVAL", "0s", `GITMESH_INTERVAL (--interval): must be at least 1s (got "0s")`},
		{"GITMESH_WORKLOAD_CERT_TTL", "1s", `GITMESH_WORKLOAD_CERT_TTL (--workload-cert-ttl): must be at least 10m0s (got "1s")`},
		{"GITMESH_MAX_REPO_SIZE", "-5", `GITMESH_MAX_REPO_SIZE (--max-repo-size): must be greater than 0 (got "-5")`},
		{"GITMESH_EVAL_TIMEOUT", "soon", `GITMESH_EVAL_TIMEOUT: invalid argument "soon"`},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			code, _, errOut := runCLI(t, "serve", "--dir", mesh)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s=%s gitmesh serve: exit %d, stderr %q; want exit 2 and %q", tc.env, tc.value, code, errOut, tc.want)
			}
		})
	}
	// The command line wins, and is checked itself.
	t.Setenv("GITMESH_INTERVAL", "0s")
	code, _, errOut := runCLI(t, "serve", "--dir", mesh, "--interval", "-1s")
	if code != exitUsage || !strings.Contains(errOut, `--interval: must be at least 1s (got "-1s")`) || strings.Contains(errOut, "GITMESH_INTERVAL") {
		t.Errorf("flag over env: exit %d, stderr %q", code, errOut)
	}
}

// TestCertsNeverCreateACA: issue, root and rotate-root refuse a state dir
// without a CA and create nothing; certs init creates one, keeps it when
// run again, and the others then work on it.
func TestCertsNeverCreateACA(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "typo")
	mesh := copyExample(t, "minimal")
	out := filepath.Join(t.TempDir(), "out")
	for _, args := range [][]string{
		{"certs", "root", "--state-dir", stateDir},
		{"certs", "rotate-root", "--state-dir", stateDir},
		{"certs", "issue", "--proxy", "sidecar/default/x/v1/x-0", "--dir", mesh, "--state-dir", stateDir, "--out", out},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(errOut, "no CA in") || !strings.Contains(errOut, "gitmesh certs init --state-dir "+stateDir) {
			t.Errorf("gitmesh %s: exit %d, stderr %q; want exit 2 suggesting certs init", strings.Join(args, " "), code, errOut)
		}
		if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
			t.Fatalf("gitmesh %s created %s", strings.Join(args, " "), stateDir)
		}
	}

	code, stdout, errOut := runCLI(t, "certs", "init", "--state-dir", stateDir)
	if code != exitOK || !strings.Contains(stdout, "created a self-signed root CA") {
		t.Fatalf("certs init: exit %d\n%s%s", code, stdout, errOut)
	}
	if st, err := os.Stat(filepath.Join(stateDir, "ca", "root-key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("root key after certs init: %v %v", st, err)
	}
	_, root1, _ := runCLI(t, "certs", "root", "--state-dir", stateDir)
	code, stdout, _ = runCLI(t, "certs", "init", "--state-dir", stateDir)
	_, root2, _ := runCLI(t, "certs", "root", "--state-dir", stateDir)
	if code != exitOK || !strings.Contains(stdout, "already holds a CA; kept it") || root1 != root2 || !strings.Contains(root1, "BEGIN CERTIFICATE") {
		t.Errorf("certs init again: exit %d %q; the root must stay the same", code, stdout)
	}
	if code, _, errOut := runCLI(t, "certs", "rotate-root", "--state-dir", stateDir, "--overlap", "1h"); code != exitOK {
		t.Errorf("rotate-root after init: exit %d: %s", code, errOut)
	}
}

// TestServeWebhookSecretChecks: serve refuses a short or world-readable
// webhook secret file at start, naming the flag and the file.
func TestServeWebhookSecretChecks(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		mode    os.FileMode
		want    string
	}{
		{"ab\n", 0o600, "2 bytes long; want at least 16"},
		{"0123456789abcdef0123\n", 0o644, "readable by others (mode 0644); chmod 600"},
	} {
		p := filepath.Join(dir, "secret")
		os.WriteFile(p, []byte(tc.content), 0o600)
		os.Chmod(p, tc.mode)
		_, err := newHooks(p, func() {}, nil)
		if err == nil || !strings.Contains(err.Error(), "--webhook-secret-file") || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q mode %04o: %v; want a usage error containing %q", tc.content, tc.mode, err, tc.want)
		}
	}
}

// TestOutputConvention: every command that prints a report takes -o and
// --output, with the same spelling; check's old --format still works
// (with a warning) and bootstrap's --format is now --kind.
func TestOutputConvention(t *testing.T) {
	mesh := copyExample(t, "minimal")
	for _, args := range [][]string{
		{"validate", mesh, "-o", "yaml"},
		{"validate", mesh, "--output", "json"},
		{"render", mesh, "--list", "--output", "yaml"},
	} {
		if code, _, errOut := runCLI(t, args...); code != exitOK {
			t.Errorf("gitmesh %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
	}
	gitRepoOf(t, mesh)
	code, out, errOut := runCLI(t, "check", mesh, "--base", "main", "--output", "json")
	if code != exitOK || !json.Valid([]byte(out)) {
		t.Errorf("check --output json: exit %d, valid JSON %v: %s", code, json.Valid([]byte(out)), errOut)
	}
	code, out2, errOut := runCLI(t, "check", mesh, "--base", "main", "--format", "json")
	if code != exitOK || out2 != out || !strings.Contains(errOut, "--format is deprecated: use --output instead") {
		t.Errorf("check --format json: exit %d, same output %v, stderr %q", code, out2 == out, errOut)
	}

	code, out, errOut = runCLI(t, "bootstrap", "--proxy", "sidecar/default/reviews/v1/r-0", "--kind", "grpc")
	if code != exitOK || !strings.Contains(out, `"xds_servers"`) {
		t.Errorf("bootstrap --kind grpc: exit %d: %s%s", code, out, errOut)
	}
	code, out2, errOut = runCLI(t, "bootstrap", "--proxy", "sidecar/default/reviews/v1/r-0", "--format", "grpc")
	if code != exitOK || out2 != out || !strings.Contains(errOut, "--format is deprecated: use --kind instead") {
		t.Errorf("bootstrap --format grpc: exit %d, same output %v, stderr %q", code, out2 == out, errOut)
	}
	code, out, _ = runCLI(t, "bootstrap", "--proxy", "proxyless/default/reviews/v1/r-0", "--tls", "--refresh-interval", "90s")
	if code != exitOK || !strings.Contains(out, `"refresh_interval": "90s"`) {
		t.Errorf("bootstrap proxyless --refresh-interval 90s: exit %d:\n%s", code, out)
	}
}

// TestStatusServerHostPort: --server takes host:port (what --http-addr
// takes) as well as a URL, and -o yaml prints the same document as -o json.
func TestStatusServerHostPort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/status":
			json.NewEncoder(w).Encode(apiv1.Status{Ready: true, Source: "dir:/mesh"})
		case "/api/v1/proxies":
			json.NewEncoder(w).Encode(apiv1.Proxies{})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(hostPort)
	for _, server := range []string{hostPort, srv.URL, srv.URL + "/", ":" + port} {
		code, out, errOut := runCLI(t, "status", "--server", server)
		if code != exitOK || !strings.Contains(out, "source:    dir:/mesh") {
			t.Errorf("status --server %s: exit %d\n%s%s", server, code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, "status", "--server", hostPort, "-o", "yaml")
	if code != exitOK || !strings.Contains(out, "source: dir:/mesh") || !strings.Contains(out, "ready: true") {
		t.Errorf("status -o yaml: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCheckBrokenHead: `gitmesh check` on a head that does not load exits
// 1 with the finding and reports no impact and nothing fixed
// (internal/check's TestBrokenHeadFixesNothing covers a base with findings).
func TestCheckBrokenHead(t *testing.T) {
	mesh := copyExample(t, "minimal")
	gitRepoOf(t, mesh)
	edit(t, mesh, "mesh.cue", `timeout: "5s"`, `timeout: 5`)
	code, out, errOut := runCLI(t, "check", mesh, "--base", "main", "-o", "json")
	var rep struct {
		Findings []struct{ Code, Severity, Status string }
		Counts   struct{ Fixed int }
		Impact   struct {
			Available bool
			Note      string
			Groups    []any
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if code != exitFindings || len(rep.Findings) == 0 || rep.Findings[0].Severity != "error" || rep.Findings[0].Status != "new" {
		t.Errorf("exit %d, findings %+v; want exit 1 and a new error", code, rep.Findings)
	}
	if rep.Impact.Available || len(rep.Impact.Groups) != 0 || !strings.Contains(rep.Impact.Note, "it would not be pushed") || rep.Counts.Fixed != 0 {
		t.Errorf("broken head: impact %+v, fixed %d", rep.Impact, rep.Counts.Fixed)
	}
}

// TestEveryNumericFlagIsBounded walks every command's flags: each duration
// and integer flag, present or added later, refuses zero and a negative
// value, so no command can take one quietly.
func TestEveryNumericFlagIsBounded(t *testing.T) {
	var g globalFlags
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			bad := map[string][]string{"duration": {"0s", "-1h"}, "int": {"0", "-1"}, "int64": {"0", "-1"}}[f.Value.Type()]
			if bad == nil || len(f.Annotations[annoDeprecated]) > 0 {
				return
			}
			seen++
			if err := checkFlags(c.Flags()); err != nil {
				t.Errorf("%s: the default --%s=%s is refused: %v", c.CommandPath(), f.Name, f.DefValue, err)
			}
			for _, v := range bad {
				c.Flags().Set(f.Name, v)
				err := checkFlags(c.Flags())
				if err == nil || !strings.Contains(err.Error(), "--"+f.Name+": ") {
					t.Errorf("%s --%s=%s: %v; want a usage error naming the flag", c.CommandPath(), f.Name, v, err)
				}
			}
			c.Flags().Set(f.Name, f.DefValue)
		})
	}
	walk(newRootCmd(&g))
	if seen < 15 {
		t.Errorf("only %d numeric flags found; the walk is broken", seen)
	}
}
