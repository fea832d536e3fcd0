package check

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// runCheck runs the check of the work tree (or head) against base and
// returns the report and its text output.
func runCheck(t *testing.T, r *testRepo, base, head string) (*Report, string) {
	t.Helper()
	rep, err := Run(context.Background(), Options{Dir: r.meshDir(), Base: base, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, rep, "text", WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return rep, b.String()
}

// TestPullRequests is the acceptance list: one branch per kind of
// pull request over a real Git repository holding bookinfo.
func TestPullRequests(t *testing.T) {
	r := newTestRepo(t, bookinfo())
	// A base that already has an error, for the pre-existing case.
	r.branch(t, "broken-base", "main")
	r.edit(t, "services/reviews.cue", `to: [{version: "v2"}]`, `to: [{version: "v9"}]`)
	r.commit(t, "break reviews")

	for _, tc := range []struct {
		name   string
		base   string
		head   string // "" checks the work tree
		change func(t *testing.T)
		failed bool
		want   []string // substrings of the text output
		check  func(t *testing.T, rep *Report)
	}{
		{
			name: "weights",
			base: "main",
			change: func(t *testing.T) {
				r.edit(t, "services/reviews.cue", `{version: "v1", weight: 50}`, `{version: "v1", weight: 80}`)
				r.edit(t, "services/reviews.cue", `{version: "v3", weight: 50}`, `{version: "v3", weight: 20}`)
			},
			want: []string{
				"impact: 1 proxy affected, resources 0 added / 1 changed / 0 removed",
				"sidecar/default/productpage/v1",
				`route "9080": vhost "reviews.default.svc.cluster.local:9080" route "canary": weights v1 50→80, v3 50→20`,
			},
		},
		{
			name: "add a version",
			base: "main",
			head: "add-version",
			change: func(t *testing.T) {
				r.edit(t, "services/reviews.cue", "\t\tv3: {", "\t\tv4: {\n\t\t\tendpoints: [{address: \"10.244.1.14\"}]\n\t\t}\n\t\tv3: {")
				r.commit(t, "reviews v4")
			},
			want: []string{
				"cluster added: outbound|9080|v4|reviews.default.svc.cluster.local",
				"endpoints added: outbound|9080|v4|reviews.default.svc.cluster.local",
				"sidecar/default/reviews/v4\n    proxy class added",
			},
		},
		{
			name: "broken reference",
			base: "main",
			change: func(t *testing.T) {
				r.edit(t, "services/reviews.cue", `to: [{version: "v2"}]`, `to: [{version: "v9"}]`)
			},
			failed: true,
			want: []string{
				`mesh/services/reviews.cue:26:10: error GM0102: services.reviews.routes[0].to[0].version: unknown version "v9" of service "reviews"`,
				"impact: not computed: head: the mesh has errors and does not render; it would not be pushed",
				"FAIL: 1 new error",
			},
		},
		{
			name: "comments only",
			base: "main",
			change: func(t *testing.T) {
				r.edit(t, "services/reviews.cue", "package mesh\n", "package mesh\n\n// Reviews of books, in three flavours.\n// Owned by the bookinfo team.\n")
			},
			want: []string{"impact: no proxy changes", "ok: 0 new errors"},
		},
		{
			name: "error already at base",
			base: "broken-base",
			change: func(t *testing.T) {
				// Move the broken line down, so only a line-blind match
				// recognises it.
				r.edit(t, "services/reviews.cue", "package mesh\n", "package mesh\n\n// moved\n")
			},
			want: []string{
				`mesh/services/reviews.cue:28:10: error GM0102: services.reviews.routes[0].to[0].version: unknown version "v9" of service "reviews" (pre-existing)`,
				"ok: 0 new errors, 0 new warnings, 0 new infos, 2 pre-existing",
			},
		},
		{
			name: "fix at base's error",
			base: "broken-base",
			head: "main",
			want: []string{"ok: 0 new errors", "1 fixed", "impact: not computed: base: the mesh has errors"},
		},
		{
			name: "suppressed with a reason",
			base: "main",
			change: func(t *testing.T) {
				r.edit(t, "services/details.cue", `from: [{service: "productpage"}]`, `from: [{service: "reviews"}]`)
				r.write(t, SuppressionsFile, "suppressions:\n  - code: GM0403\n    path: services.details\n    reason: productpage moves to the cache next sprint\n")
			},
			failed: false,
			want: []string{
				`(suppressed: productpage moves to the cache next sprint)`,
				"RBAC filter_chains[inbound|9080|mtls] HCM.http_filters[envoy.filters.http.rbac].typed_config: principal spiffe://cluster.local/ns/default/sa/bookinfo-reviews added to allow",
				"RBAC filter_chains[inbound|9080|mtls] HCM.http_filters[envoy.filters.http.rbac].typed_config: principal spiffe://cluster.local/ns/default/sa/bookinfo-productpage removed from allow",
			},
		},
		{
			name: "suppression without a reason",
			base: "main",
			change: func(t *testing.T) {
				r.write(t, SuppressionsFile, "suppressions:\n  - code: GM0403\n    path: services.details\n")
			},
			failed: true,
			want:   []string{"mesh/.gitmesh/suppressions.yaml:2:5: error GM0901: suppression of GM0403 has no reason"},
		},
		{
			name: "symlink out of the repository",
			base: "main",
			change: func(t *testing.T) {
				if err := os.Symlink("/etc/passwd", filepath.Join(r.meshDir(), "services", "passwd.cue")); err != nil {
					t.Fatal(err)
				}
			},
			failed: true,
			want:   []string{`mesh/services/passwd.cue: error GM0006: symlink to "/etc/passwd" leaves the repository`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := tc.base
			if tc.head == "" || tc.head == "add-version" {
				name := tc.head
				if name == "" {
					name = "pr"
				}
				r.branch(t, name, from)
			}
			if tc.change != nil {
				tc.change(t)
			}
			rep, out := runCheck(t, r, tc.base, tc.head)
			if rep.Failed != tc.failed {
				t.Errorf("failed = %v, want %v\n%s", rep.Failed, tc.failed, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, r.root) {
				t.Errorf("output names the temp dir %s:\n%s", r.root, out)
			}
			if tc.check != nil {
				tc.check(t, rep)
			}
		})
	}
}

// TestFailOnWarning: a new warning fails only with --fail-on warning.
func TestFailOnWarning(t *testing.T) {
	r := newTestRepo(t, bookinfo())
	r.edit(t, "services/details.cue", `from: [{service: "productpage"}]`, `from: [{service: "reviews"}]`)
	for _, tc := range []struct {
		failOn model.Severity
		want   bool
	}{{model.SeverityError, false}, {model.SeverityWarning, true}} {
		rep, err := Run(context.Background(), Options{Dir: r.meshDir(), Base: "HEAD", FailOn: tc.failOn})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed != tc.want || rep.Counts.NewWarnings != 1 {
			t.Errorf("fail-on %s: failed = %v (counts %+v), want %v", tc.failOn, rep.Failed, rep.Counts, tc.want)
		}
	}
}

// TestUsageErrors: bad revisions and directories outside Git are usage
// errors, not findings.
func TestUsageErrors(t *testing.T) {
	r := newTestRepo(t, bookinfo())
	for _, opts := range []Options{
		{Dir: r.meshDir(), Base: "no-such-branch"},
		{Dir: r.meshDir(), Base: "main", Head: "nope"},
		{Dir: t.TempDir(), Base: "main"},
		{Dir: r.meshDir()},
	} {
		_, err := Run(context.Background(), opts)
		if _, ok := err.(*UsageError); !ok {
			t.Errorf("%+v: err = %v, want a usage error", opts, err)
		}
	}
}

// TestMeshAddedByPR: a mesh directory missing at base is an empty mesh, so
// every proxy class is added.
func TestMeshAddedByPR(t *testing.T) {
	r := newTestRepo(t, bookinfo())
	r.git(t, "mv", meshSub, "other")
	r.commit(t, "move")
	r.branch(t, "pr", "main")
	r.git(t, "mv", "other", meshSub)
	rep, out := runCheck(t, r, "main", "")
	if rep.Failed || rep.Impact.Proxies != 8 || rep.Impact.Removed != 0 {
		t.Errorf("want 8 added proxy classes, got:\n%s", out)
	}
}
