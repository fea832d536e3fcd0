package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/internal/golden"
)

// TestExplainGolden: the example prints the hops from
// productpage's sidecar to reviews v2, each with the position that made
// it, in text and JSON (testdata/explain/*.golden, -update rewrites).
func TestExplainGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "bookinfo")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"jason.txt", []string{"--from", "sidecar/default/productpage/v1", "GET http://reviews:9080/reviews/1 -H end-user:jason"}},
		{"jason.json", []string{"--from", "sidecar/default/productpage/v1", "GET http://reviews:9080/reviews/1 -H end-user:jason", "-o", "json"}},
		{"canary.txt", []string{"--from", "sidecar/default/productpage/v1", "GET http://reviews:9080/reviews/1"}},
		{"denied.txt", []string{"--from", "sidecar/default/productpage/v1", "--principal", "spiffe://cluster.local/ns/default/sa/bookinfo-ratings", "GET http://details:9080/details/0"}},
		{"egress.txt", []string{"--from", "sidecar/default/details/v1", "GET http://www.googleapis.com/books/v1/volumes"}},
		{"ingress.txt", []string{"--from", "ingress/bookinfo-gateway", "-H", "user-agent: curl", "GET https://bookinfo.example.com:8443/productpage"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"explain", "--dir", dir}, c.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			golden.Check(t, filepath.Join("testdata", "explain", c.name), []byte(out))
		})
	}
	// The "done when": the hops end at reviews v2.
	_, out, _ := runCLI(t, "explain", "--dir", dir, "--from", "sidecar/default/productpage/v1", "GET http://reviews:9080/ -H end-user:jason", "-o", "json")
	var rep explainReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	hops := rep.Outcome.Hops
	if len(hops) == 0 || hops[len(hops)-1].Class != "sidecar/default/reviews/v2" || rep.Outcome.To["reviews/v2"] != 100 {
		t.Errorf("hops do not end at reviews v2: %+v", rep.Outcome)
	}
}

func TestExplainUsage(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "bookinfo")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"explain", "--dir", dir, "GET http://reviews:9080/"}, "--from is required"},
		{[]string{"explain", "--dir", dir, "--from", "sidecar/default/nope/v1", "GET http://reviews:9080/"}, `class "sidecar/default/nope/v1": not in the rendered config`},
		{[]string{"explain", "--dir", dir, "--from", "sidecar/default/productpage/v1", "GET reviews"}, "want SCHEME://HOST"},
		{[]string{"explain", "--dir", dir, "--from", "sidecar/default/productpage/v1", "GET http://reviews:9080/ -H nocolon"}, `header "nocolon": want NAME:VALUE`},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s%s", c.args, code, c.want, out, errOut)
		}
	}
}

// TestCheckTrafficTestsChangeOutcome is the "done when": a commit
// that moves the reviews canary from 50/50 to 100/0 makes `gitmesh check
// --base HEAD~1` print which traffic tests change outcome and exit 1,
// in every format; explain --revision shows both sides.
func TestCheckTrafficTestsChangeOutcome(t *testing.T) {
	dir := copyExample(t, "bookinfo")
	gitRepoOf(t, dir)
	edit(t, dir, "services/reviews.cue", `{version: "v1", weight: 50}`, `{version: "v1", weight: 100}`)
	edit(t, dir, "services/reviews.cue", `{version: "v3", weight: 50}`, `{version: "v3", weight: 0}`)
	git(t, dir, "commit", "-q", "-am", "reviews: canary off")

	code, out, errOut := runCLI(t, "check", dir, "--base", "HEAD~1")
	if code != exitFindings {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"error GM1104: tests.\"others-canary\": expected reviews/v1 50% reviews/v3 50%, got reviews/v1 100%",
		"traffic tests that change outcome\n  others-canary: passes → FAILS\n    base: routed to reviews/v1 50% reviews/v3 50%, timeout 10s, retries 3 per try 2s\n    head: routed to reviews/v1 100%, timeout 10s, retries 3 per try 2s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "jason-sees-v2") {
		t.Errorf("a test whose outcome did not change is listed:\n%s", out)
	}
	code, out, _ = runCLI(t, "check", dir, "--base", "HEAD~1", "-o", "json")
	var rep struct {
		Failed  bool `json:"failed"`
		Traffic []struct {
			Name       string `json:"name"`
			BasePassed bool   `json:"basePassed"`
			HeadPassed bool   `json:"headPassed"`
		} `json:"traffic"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if code != exitFindings || !rep.Failed || len(rep.Traffic) != 1 || rep.Traffic[0].Name != "others-canary" || !rep.Traffic[0].BasePassed || rep.Traffic[0].HeadPassed {
		t.Errorf("json: exit %d, report %+v", code, rep)
	}
	code, out, _ = runCLI(t, "check", dir, "--base", "HEAD~1", "-o", "markdown")
	if code != exitFindings || !strings.Contains(out, "| `others-canary` | passes | FAILS |") {
		t.Errorf("markdown: exit %d\n%s", code, out)
	}

	// explain reads either side.
	_, before, _ := runCLI(t, "explain", "--dir", dir, "--revision", "HEAD~1", "--from", "sidecar/default/productpage/v1", "GET http://reviews:9080/reviews/1")
	_, after, _ := runCLI(t, "explain", "--dir", dir, "--from", "sidecar/default/productpage/v1", "GET http://reviews:9080/reviews/1")
	if !strings.Contains(before, "outcome: routed to reviews/v1 50% reviews/v3 50%") || !strings.Contains(after, "outcome: routed to reviews/v1 100%") {
		t.Errorf("explain --revision HEAD~1:\n%s\nexplain work tree:\n%s", before, after)
	}
}
