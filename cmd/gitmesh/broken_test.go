package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/internal/check"
	"github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/policies"
	"github.com/gitmesh/gitmesh/schema/model"
)

// brokenCase is one repository under testdata/broken/NAME: a small mesh
// with exactly one mistake (or, for the valid-* cases, none). Each is a
// complete repository: `gitmesh validate testdata/broken/NAME` runs on it.
type brokenCase struct {
	name string
	// code is the finding the mistake must produce, as an anchored regexp
	// (alternatives where the fix being designed elsewhere may pick either
	// code); "" for valid cases.
	code string
	// sev is the severity of that finding; it decides the exit code of
	// validate (1 for error, 0 otherwise) and serve's verdict.
	sev model.Severity
	// line, when set, is the line the finding must be at (for cases where
	// the issue is a wrong position).
	line int
	// pos says how precise the position must be: "" file:line:col, or
	// posFile for whole-file findings (a file, no line).
	pos string
	// flags are load flags for validate, check and serve (size limits,
	// evaluation timeout).
	flags []string
	// checkOnly: the code is about check's suppressions file, so only
	// check reports it; validate and serve see a valid mesh.
	checkOnly bool
	// notWant are texts no finding of the case may contain (false
	// companion findings).
	notWant []string
}

const posFile = "file"

// brokenCases is the table. Render codes (GM08xx) that no input reaches
// are not in it: render's self-check (ValidateAll in render/validate.go,
// the Envoy-strict rules of render/envoystrict) runs after policies and
// the schema have already refused what would trip it, and the unit tests
// of render and render/envoystrict cover each code by building the protos
// directly:
//   - GM0811–GM0817 (duplicate listener address, filter chain matches,
//     capture, vhost domains, TLS, cluster types, listeners without
//     chains): properties of render's own output, broken case by case in
//     render/envoystrict's rule tests;
//   - GM0802 invalid resource: every value is bounded by the schema first;
//   - GM0803 dangling reference, GM0805 router not last, GM0810 two
//     resources under one name: properties of render's own builders;
//   - GM0804 secret not served: needs serve's credential source, which a
//     directory source without --credentials-dir does not have;
//   - GM0806 weights total 0: policies refuse it first (GM0201);
//   - GM0807 negative timeout: the schema's duration pattern has no sign;
//   - GM0808 invalid value: the loader checks regexes with RE2's grammar
//     and bounds every integer to its Envoy field (GM0002 at the value);
//   - GM0801 unresolved name: an unrouted PASSTHROUGH or tcp listener host
//     is policies' GM0210 first (passthrough-no-route);
//   - GM0809 unsupported: policies report GM0208 first (proxyless callers
//     routed to an external service), and the schema refuses oci:// Wasm.
var brokenCases = []brokenCase{
	{name: "valid-base"},
	{name: "valid-passthrough-route"},
	{name: "valid-tcp-route"},
	{name: "valid-egress-route"},

	// Loading and schema (GM00xx).
	{name: "cue-syntax-error", code: "GM0001", sev: model.SeverityError},
	{name: "yaml-syntax-error", code: "GM0001", sev: model.SeverityError},
	{name: "json-syntax-error", code: "GM0001", sev: model.SeverityError},
	{name: "port-out-of-range", code: "GM0002", sev: model.SeverityError},
	{name: "missing-ports", code: "GM0003", sev: model.SeverityError},
	{name: "file-too-big", code: "GM0004", sev: model.SeverityError, pos: posFile, flags: []string{"--max-file-size=512"}},
	{name: "repo-too-big", code: "GM0005", sev: model.SeverityError, pos: posFile, flags: []string{"--max-repo-size=100"}},
	{name: "symlink-escapes", code: "GM0006", sev: model.SeverityError, pos: posFile},
	{name: "eval-timeout", code: "GM0007", sev: model.SeverityError, pos: posFile, flags: []string{"--eval-timeout=1ns"}},
	// The bomb under a 256 MiB cap: CUE builds the package before
	// any entity, so the sandbox locates the declaration (line 6, _s1).
	{name: "eval-memory", code: "GM0010", sev: model.SeverityError, line: 6, flags: []string{"--max-eval-memory=268435456"}},
	{name: "guardrail-invalid", code: "GM0008", sev: model.SeverityError},
	{name: "guardrail-rejects", code: "GM0009", sev: model.SeverityError},
	{name: "huge-integer", code: "GM0002", sev: model.SeverityError, line: 6},
	{name: "maxconnections-overflow", code: "GM0002", sev: model.SeverityError, line: 6},
	{name: "huge-duration", code: "GM0002", sev: model.SeverityError, line: 13},
	{name: "fault-percent-150", code: "GM0002", sev: model.SeverityError, line: 14,
		notWant: []string{"set exactly one of httpStatus or grpcStatus", "empty disjunction"}},

	// References (GM01xx).
	{name: "unknown-service", code: "GM0101", sev: model.SeverityError},
	{name: "unknown-version", code: "GM0102", sev: model.SeverityError},
	{name: "via-unknown-gateway", code: "GM0103", sev: model.SeverityError},
	{name: "unknown-external", code: "GM0104", sev: model.SeverityError},
	{name: "extension-unknown-service", code: "GM0105", sev: model.SeverityError},
	{name: "dependson-unknown", code: "GM0106", sev: model.SeverityError},
	{name: "gateway-destination-empty", code: "GM0107", sev: model.SeverityError},
	{name: "route-outside-dependson", code: "GM0108", sev: model.SeverityWarning},
	{name: "via-ingress-gateway", code: "GM0109", sev: model.SeverityError},
	{name: "endpoint-port-unknown", code: "GM0110", sev: model.SeverityError, line: 9},

	// Routing (GM02xx).
	{name: "weights-sum-90", code: "GM0201", sev: model.SeverityError},
	{name: "route-port-unknown", code: "GM0202", sev: model.SeverityError},
	{name: "unreachable-route", code: "GM0203", sev: model.SeverityWarning},
	{name: "per-try-timeout", code: "GM0204", sev: model.SeverityWarning},
	{name: "gateway-host-not-served", code: "GM0205", sev: model.SeverityError},
	{name: "stream-route-http-field", code: "GM0209", sev: model.SeverityError, line: 27},
	{name: "service-route-hosts", code: "GM0211", sev: model.SeverityError, line: 12},
	{name: "proxyless-to-external", code: "GM0208", sev: model.SeverityError, line: 13},
	{name: "gateway-credential-needed", code: "GM0601", sev: model.SeverityWarning, line: 24},
	{name: "egress-route-wrong-via", code: "GM0206", sev: model.SeverityWarning},
	{name: "egress-route-tls-port", code: "GM0202", sev: model.SeverityError, line: 30},
	{name: "proxyless-method-match", code: "GM0207", sev: model.SeverityWarning, line: 23},
	{name: "passthrough-no-route", code: "GM0210", sev: model.SeverityError},

	// Conflicts (GM03xx).
	{name: "external-host-twice", code: "GM0301", sev: model.SeverityError},
	{name: "listener-protocol-clash", code: "GM0302", sev: model.SeverityError},
	{name: "duplicate-route-name", code: "GM0303", sev: model.SeverityError},
	// CODES.md files a duplicate port name under GM0303; the loader says
	// GM0002 today. Either is a positioned error.
	{name: "duplicate-port-name", code: "GM0002|GM0303", sev: model.SeverityError},
	{name: "vip-claimed-twice", code: "GM0304", sev: model.SeverityError},
	{name: "vip-range-network", code: "GM0305", sev: model.SeverityError},
	{name: "vip-range-full", code: "GM0306", sev: model.SeverityWarning},
	{name: "target-port-proxy-owned", code: "GM0307", sev: model.SeverityError},
	{name: "sidecar-endpoint-port", code: "GM0308", sev: model.SeverityWarning, line: 12},

	// Security (GM04xx).
	{name: "proxy-none-strict", code: "GM0401", sev: model.SeverityError},
	{name: "authz-unknown-source", code: "GM0402", sev: model.SeverityError},
	{name: "caller-denied", code: "GM0403", sev: model.SeverityWarning},
	{name: "authz-unknown-port", code: "GM0404", sev: model.SeverityWarning},
	{name: "proxy-none-authz", code: "GM0405", sev: model.SeverityWarning},

	// Reachability (GM05xx).
	{name: "unreferenced-service", code: "GM0501", sev: model.SeverityInfo},
	{name: "gateway-without-routes", code: "GM0502", sev: model.SeverityInfo},
	{name: "static-no-endpoints", code: "GM0503", sev: model.SeverityWarning},
	{name: "no-services", code: "GM0504", sev: model.SeverityError, line: 4},

	// Render (GM08xx), reached by input.
	{name: "bad-header-regex", code: "GM0002", sev: model.SeverityError, line: 12},
	{name: "bad-path-regex", code: "GM0002", sev: model.SeverityError, line: 12},
	{name: "oci-wasm", code: "GM0002", sev: model.SeverityError, line: 24},

	// Guardrail packs (GM1xxx).
	{name: "pack-unknown", code: "GM1000", sev: model.SeverityError},
	{name: "pack-strict-mtls", code: "GM1001", sev: model.SeverityError},
	{name: "pack-timeouts", code: "GM1002", sev: model.SeverityError},
	{name: "pack-retries-budget", code: "GM1003", sev: model.SeverityError},
	{name: "pack-wildcard-ingress", code: "GM1004", sev: model.SeverityError},
	{name: "pack-egress-gateway", code: "GM1005", sev: model.SeverityError},
	{name: "pack-require-authorization", code: "GM1006", sev: model.SeverityError},

	// Traffic tests (GM11xx): a failing one stops serve at render.
	{name: "test-request-invalid", code: "GM1101", sev: model.SeverityError, line: 24},
	{name: "test-from-unknown", code: "GM1102", sev: model.SeverityError, line: 23},
	{name: "test-to-unknown", code: "GM1103", sev: model.SeverityError, line: 25},
	{name: "test-fails", code: "GM1104", sev: model.SeverityError, line: 23},

	// check's suppressions file (GM09xx).
	{name: "suppression-no-reason", code: "GM0901", sev: model.SeverityError, checkOnly: true},
	{name: "suppression-bad-yaml", code: "GM0902", sev: model.SeverityError, checkOnly: true},
	{name: "suppression-unmatched", code: "GM0903", sev: model.SeverityInfo, checkOnly: true},
}

func (c brokenCase) dir() string { return filepath.Join("testdata", "broken", c.name) }

// wantExit is validate's exit code: 1 only when the mistake is an error
// that validate sees.
func (c brokenCase) wantExit() int {
	if c.code != "" && c.sev == model.SeverityError && !c.checkOnly {
		return exitFindings
	}
	return exitOK
}

// badMessage matches what a finding must never say: Go's type names and
// paths quoted twice.
var badMessage = regexp.MustCompile(`Go struct|json: cannot unmarshal|\\"|"(services|gateways|external|extensions|mesh)\.|\]"\.`)

// checkFinding asserts that ds holds the case's finding, well placed and
// well worded, and nothing else.
func (c brokenCase) checkFinding(t *testing.T, where string, ds model.Diagnostics) {
	t.Helper()
	re := regexp.MustCompile(`^(` + c.code + `)$`)
	var found []model.Diagnostic
	for _, d := range ds {
		for _, nw := range c.notWant {
			if strings.Contains(d.Message, nw) {
				t.Errorf("%s: false companion finding %s", where, d.Error())
			}
		}
		if re.MatchString(d.Code) && d.Severity == c.sev {
			found = append(found, d)
		} else {
			// One mistake per repository: any other finding is a second
			// mistake in the case or a companion finding of the first.
			t.Errorf("%s: unexpected finding %s", where, formatDiagnostic("", d))
		}
	}
	if len(found) == 0 {
		t.Errorf("%s: no %s finding %q in\n%s", where, c.sev, c.code, diagLines(ds))
		return
	}
	for _, d := range found {
		switch {
		case d.Pos.File == "":
			t.Errorf("%s: %s has no position", where, d.Error())
		case c.pos != posFile && (d.Pos.Line <= 0 || d.Pos.Col <= 0):
			t.Errorf("%s: %s has no line:col", where, d.Error())
		case c.line > 0 && d.Pos.Line != c.line:
			t.Errorf("%s: %s is at line %d, want %d", where, d.Error(), d.Pos.Line, c.line)
		}
		if strings.TrimSpace(d.Message) == "" {
			t.Errorf("%s: %s has an empty message", where, d.Error())
		}
		if m := badMessage.FindString(d.Path + " " + d.Message); m != "" {
			t.Errorf("%s: %s: says %q (a Go type or a path quoted twice)", where, d.Error(), m)
		}
	}
}

func diagLines(ds model.Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("  " + formatDiagnostic("", d) + "\n")
	}
	return b.String()
}

// TestBroken runs validate, check -o json and serve's reconcile (read back
// through GET /api/v1/status) on every broken repository and compares the
// three verdicts with testdata/broken/NAME.golden (-update rewrites them).
func TestBroken(t *testing.T) {
	for _, c := range brokenCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var g strings.Builder

			// validate, text and JSON.
			code, out, errOut := runCLI(t, append(append([]string{"validate"}, c.flags...), c.dir())...)
			fmt.Fprintf(&g, "# gitmesh validate\nexit %d\n%s%s", code,
				strings.ReplaceAll(out, filepath.ToSlash(c.dir()), c.name), errOut)
			_, jsonOut, _ := runCLI(t, append(append([]string{"validate", "-o", "json"}, c.flags...), c.dir())...)
			var rep validateReport
			if err := json.Unmarshal([]byte(jsonOut), &rep); err != nil {
				t.Fatalf("validate -o json: %v\n%s", err, jsonOut)
			}

			// check -o json: base is valid-base, head the case.
			ccode, findings := runBrokenCheck(t, c)
			fmt.Fprintf(&g, "\n# gitmesh check -o json\nexit %d\n", ccode)
			cds := checkDiagnostics(findings)
			for i, f := range findings {
				fmt.Fprintf(&g, "%s [%s]\n", formatDiagnostic("", cds[i]), f.Status)
			}

			// serve: one reconcile, read through the status API.
			at := serveOnce(t, c.dir(), c.flags)
			fmt.Fprintf(&g, "\n# GET /api/v1/status lastAttempt\nresult %s\n", at.Result)
			if at.FailedStep != "" {
				fmt.Fprintf(&g, "failedStep %s\nerror %s\n", at.FailedStep, at.Error)
			}
			for _, d := range at.Diagnostics {
				fmt.Fprintln(&g, formatDiagnostic("", d))
			}
			golden.Check(t, filepath.Join("testdata", "broken", c.name+".golden"), []byte(g.String()))

			if code != c.wantExit() {
				t.Errorf("validate: exit %d, want %d\n%s%s", code, c.wantExit(), out, errOut)
			}
			if c.code == "" {
				if len(rep.Diagnostics) > 0 || ccode != exitOK || at.Result != "applied" {
					t.Errorf("valid case: validate %d findings, check exit %d, serve %s", len(rep.Diagnostics), ccode, at.Result)
				}
				return
			}
			c.checkFinding(t, "check", cds)
			if c.checkOnly {
				return
			}
			c.checkFinding(t, "validate", rep.Diagnostics)
			if c.sev == model.SeverityError {
				if ccode != exitFindings {
					// A limit flag applies to base too, so the finding is
					// pre-existing there; every other error is new.
					if len(c.flags) == 0 {
						t.Errorf("check: exit %d, want 1", ccode)
					}
				}
				if at.Result != "failed" {
					t.Errorf("serve: result %q, want failed", at.Result)
				}
				c.checkFinding(t, "status API", at.Diagnostics)
			} else if at.Result != "applied" {
				t.Errorf("serve: result %q (%s), want applied", at.Result, at.Error)
			}
		})
	}
}

// TestBrokenTable keeps the table, the directories and the code lists in
// step: every directory is a case, every code of policies.Codes() and of
// the schema has a case (GM20xx drift codes describe a running mesh, not a
// revision).
func TestBrokenTable(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "broken"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs, names []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	var codes []string
	for _, c := range brokenCases {
		names = append(names, c.name)
		codes = append(codes, strings.Split(c.code, "|")...)
	}
	slices.Sort(names)
	if !slices.Equal(dirs, names) {
		t.Errorf("directories %v\n!= table %v", dirs, names)
	}
	if len(names) < 35 {
		t.Errorf("%d cases, want at least 35", len(names))
	}
	for _, ci := range policies.Codes() {
		if strings.HasPrefix(ci.Code, "GM20") {
			continue
		}
		if !slices.Contains(codes, ci.Code) {
			t.Errorf("no broken case for %s (%s)", ci.Code, ci.Title)
		}
	}
	for _, code := range []string{"GM0001", "GM0002", "GM0003", "GM0004", "GM0005", "GM0006", "GM0007", "GM0008", "GM0009",
		"GM0901", "GM0902", "GM0903"} {
		if !slices.Contains(codes, code) {
			t.Errorf("no broken case for %s", code)
		}
	}
}

// TestValidateAgreesWithServe is issue 11's property: for every example
// and every broken case, validate accepts a revision exactly when serve
// applies it.
func TestValidateAgreesWithServe(t *testing.T) {
	type input struct {
		name, dir string
		flags     []string
	}
	var inputs []input
	for _, ex := range []string{"bookinfo", "minimal", "grpc-canary"} {
		inputs = append(inputs, input{name: "examples/" + ex, dir: filepath.Join("..", "..", "examples", ex)})
	}
	for _, c := range brokenCases {
		inputs = append(inputs, input{name: c.name, dir: c.dir(), flags: c.flags})
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, append(append([]string{"validate"}, in.flags...), in.dir)...)
			if code != exitOK && code != exitFindings {
				t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
			}
			at := serveOnce(t, in.dir, in.flags)
			accepted, applied := code == exitOK, at.Result == "applied"
			if accepted == applied {
				return
			}
			t.Errorf("validate accepted=%v (exit %d), serve applied=%v (%s: %s)\nvalidate:\n%s", accepted, code, applied, at.FailedStep, at.Error, out)
		})
	}
}

// checkDiagnostics turns check's findings back into diagnostics, so one
// formatter and one set of assertions serve all three entry points.
func checkDiagnostics(fs []check.Finding) model.Diagnostics {
	ds := make(model.Diagnostics, 0, len(fs))
	for _, f := range fs {
		ds = append(ds, model.Diagnostic{Code: f.Code, Severity: f.Severity, Path: f.Path, Message: f.Message,
			Pos: model.Pos{File: f.File, Line: f.Line, Col: f.Col}})
	}
	return ds
}

// runBrokenCheck commits valid-base to a fresh repository, puts the case
// in its working tree and runs `check --base main -o json` there.
func runBrokenCheck(t *testing.T, c brokenCase) (int, []check.Finding) {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	copyTree(t, filepath.Join("testdata", "broken", "valid-base"), repo)
	gitRepoOf(t, repo)
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(repo, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	copyTree(t, c.dir(), repo)
	code, out, errOut := runCLI(t, append([]string{"check", repo, "--base", "main", "-o", "json"}, c.flags...)...)
	if code != exitOK && code != exitFindings {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	var rep check.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, out)
	}
	return code, rep.Findings
}
