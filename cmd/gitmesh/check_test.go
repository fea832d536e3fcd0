package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// gitRepoOf turns a copied example into a Git repository with one commit
// on main, using the git CLI as a user would.
func gitRepoOf(t *testing.T, dir string) {
	t.Helper()
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"commit", "-q", "-m", "base"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// TestCheckExitCodes: the exit code is the same in every format — 1 for a
// new error, 0 for a clean change — and the output names the change.
func TestCheckExitCodes(t *testing.T) {
	dir := copyExample(t, "bookinfo")
	gitRepoOf(t, dir)

	edit(t, dir, "services/reviews.cue", `{version: "v1", weight: 50}`, `{version: "v1", weight: 80}`)
	edit(t, dir, "services/reviews.cue", `{version: "v3", weight: 50}`, `{version: "v3", weight: 20}`)
	// The canary's traffic test moves with it, so the change is clean.
	edit(t, dir, "tests/routing.cue", `{"reviews/v1": 50, "reviews/v3": 50}`, `{"reviews/v1": 80, "reviews/v3": 20}`)
	for _, format := range []string{"text", "json", "markdown", "sarif", "github"} {
		code, out, errOut := runCLI(t, "check", dir, "--base", "main", "-o", format)
		if code != exitOK {
			t.Errorf("weights, %s: exit %d, want 0\n%s%s", format, code, out, errOut)
		}
		if (format == "text" || format == "markdown" || format == "github") && !strings.Contains(out, "weights v1 50→80, v3 50→20") {
			t.Errorf("weights, %s: no weight diff in\n%s", format, out)
		}
	}

	edit(t, dir, "services/reviews.cue", `to: [{version: "v2"}]`, `to: [{version: "v9"}]`)
	for _, format := range []string{"text", "json", "markdown", "sarif", "github"} {
		code, out, errOut := runCLI(t, "check", dir, "--base", "main", "-o", format)
		if code != exitFindings {
			t.Errorf("broken, %s: exit %d, want 1\n%s%s", format, code, out, errOut)
		}
		if !strings.Contains(out, "GM0102") {
			t.Errorf("broken, %s: GM0102 missing from\n%s", format, out)
		}
	}
	// The same error committed to base is pre-existing: exit 0.
	code, out, _ := runCLI(t, "check", dir, "--base", "main", "--head", "main")
	if code != exitOK || !strings.Contains(out, "no proxy changes") {
		t.Errorf("head == base: exit %d, want 0 and no changes\n%s", code, out)
	}
}

func TestCheckUsage(t *testing.T) {
	dir := copyExample(t, "minimal")
	gitRepoOf(t, dir)
	for _, args := range [][]string{
		{"check", dir},
		{"check", dir, "--base", "main", "-o", "xml"},
		{"check", dir, "--base", "main", "--fail-on", "info"},
		{"check", dir, "--base", "no-such-rev"},
		{"check", t.TempDir(), "--base", "main"},
	} {
		if code, out, errOut := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2\n%s%s", args, code, out, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "check", dir, "--base", "main"); code != exitOK {
		t.Errorf("clean: exit %d\n%s", code, errOut)
	}
}
