package statusgit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/reconciler/source"
)

var meshSeed = map[string]string{
	"services/reviews.cue": "services: reviews: {}\n",
	"mesh.cue":             "mesh: name: \"prod\"\n",
}

const (
	report1 = "cluster: prod\nfindings:\n- service: reviews\n  version: v3\n  state: nacked\n"
	report2 = report1 + "- service: ratings\n  version: v1\n  state: stale\n"
)

func newWriter(t testing.TB, url string, mod func(*Options)) *Writer {
	t.Helper()
	o := Options{
		URL:    url,
		Author: Signature{Name: "gitmesh", Email: "gitmesh@example.com"},
		Now:    clock(),
	}
	if mod != nil {
		mod(&o)
	}
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func write(t testing.TB, w *Writer, content, msg string) Result {
	t.Helper()
	res, err := w.Write(context.Background(), Change{Path: "status/prod.yaml", Content: []byte(content), Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func count(t testing.TB, s *server, branch string) string {
	t.Helper()
	return s.bareGit(t, "rev-list", "--count", branch)
}

func TestFirstWriteCreatesOrphanBranch(t *testing.T) {
	for name, seed := range map[string]map[string]string{"config repository": meshSeed, "empty repository": nil} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, seed)
			w := newWriter(t, s.serveDaemon(t), nil)
			res := write(t, w, report1, "drift: reviews-v3 NACKed")
			if !res.Committed || res.Attempts != 1 {
				t.Fatalf("result %+v, want one committed attempt", res)
			}
			if got := s.bareGit(t, "rev-parse", "gitmesh-status"); got != res.Commit {
				t.Errorf("branch at %s, result says %s", got, res.Commit)
			}
			if got := count(t, s, "gitmesh-status"); got != "1" {
				t.Errorf("branch has %s commits, want 1 (an orphan root)", got)
			}
			if got := s.bareGit(t, "ls-tree", "-r", "--name-only", "gitmesh-status"); got != "status/prod.yaml" {
				t.Errorf("tree holds %q, want only the status file", got)
			}
			if got := s.bareGit(t, "show", "gitmesh-status:status/prod.yaml") + "\n"; got != report1 {
				t.Errorf("content %q, want %q", got, report1)
			}
			if seed != nil && count(t, s, "main") != "1" {
				t.Error("main changed")
			}
		})
	}
}

func TestSameMeaningMakesNoCommit(t *testing.T) {
	s := newServer(t, meshSeed)
	w := newWriter(t, s.serveDaemon(t), nil)
	first := write(t, w, report1, "drift: first")
	again := write(t, w, report1, "drift: again")
	if again.Committed || again.Commit != first.Commit {
		t.Errorf("identical report: %+v, want no commit at %s", again, first.Commit)
	}
	// Only a timestamp differs: the caller's Same says it means the same.
	ctx := context.Background()
	res, err := w.Write(ctx, Change{
		Path: "status/prod.yaml", Content: []byte(report1 + "# generated 10:05\n"), Message: "drift: timestamp only",
		Same: func(cur []byte) bool { return string(cur) == report1 },
	})
	if err != nil || res.Committed {
		t.Errorf("Same true: %+v, %v; want no commit", res, err)
	}
	if got := count(t, s, "gitmesh-status"); got != "1" {
		t.Errorf("branch has %s commits, want 1", got)
	}
}

func TestChangeMakesOneCommit(t *testing.T) {
	s := newServer(t, meshSeed)
	w := newWriter(t, s.serveDaemon(t), func(o *Options) {
		o.Committer = Signature{Name: "gitmesh bot", Email: "bot@example.com"}
	})
	first := write(t, w, report1, "drift: reviews-v3 NACKed")
	msg := "drift: ratings-v1 stale\n\nratings v1 has not acked for 5m."
	res := write(t, w, report2, msg)
	if !res.Committed || res.Attempts != 1 {
		t.Fatalf("result %+v", res)
	}
	if got := count(t, s, "gitmesh-status"); got != "2" {
		t.Errorf("branch has %s commits, want 2", got)
	}
	if got := s.bareGit(t, "rev-parse", "gitmesh-status^"); got != first.Commit {
		t.Errorf("parent %s, want %s", got, first.Commit)
	}
	got := s.bareGit(t, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%aI|%B", "gitmesh-status")
	want := "gitmesh <gitmesh@example.com>|gitmesh bot <bot@example.com>|2026-11-21T10:02:00+00:00|" + msg
	if got != want {
		t.Errorf("commit\n got %q\nwant %q", got, want)
	}
}

func TestHumanCommitIsPreserved(t *testing.T) {
	s := newServer(t, meshSeed)
	w := newWriter(t, s.serveDaemon(t), nil)
	write(t, w, report1, "drift: reviews-v3 NACKed")
	human := s.humanCommit(t, "gitmesh-status", "notes: reviews v3 is known bad", map[string]string{
		"NOTES.md": "reviews v3 NACK is tracked in TICKET-42\n",
	})
	res := write(t, w, report2, "drift: ratings-v1 stale")
	if !res.Committed {
		t.Fatalf("result %+v", res)
	}
	if got := s.bareGit(t, "rev-parse", "gitmesh-status^"); got != human {
		t.Errorf("our commit's parent is %s, want the human's %s", got, human)
	}
	if got := s.bareGit(t, "show", "gitmesh-status:NOTES.md"); got != "reviews v3 NACK is tracked in TICKET-42" {
		t.Errorf("NOTES.md = %q", got)
	}
	if got := s.bareGit(t, "log", "--format=%s", "gitmesh-status"); got != "drift: ratings-v1 stale\nnotes: reviews v3 is known bad\ndrift: reviews-v3 NACKed" {
		t.Errorf("history:\n%s", got)
	}
	s.logP(t, "gitmesh-status")
}

func TestRaceBeforePushLandsOnTop(t *testing.T) {
	s := newServer(t, meshSeed)
	w := newWriter(t, s.serveDaemon(t), nil)
	write(t, w, report1, "drift: reviews-v3 NACKed")
	var human string
	w.beforePush = func() {
		if human == "" {
			human = s.humanCommit(t, "gitmesh-status", "notes: racing", map[string]string{"NOTES.md": "raced\n"})
		}
	}
	res := write(t, w, report2, "drift: ratings-v1 stale")
	if !res.Committed || res.Attempts != 2 {
		t.Fatalf("result %+v, want committed on the 2nd attempt", res)
	}
	if got := s.bareGit(t, "rev-parse", "gitmesh-status^"); got != human {
		t.Errorf("parent %s, want the racing commit %s", got, human)
	}
	if got := s.bareGit(t, "show", "gitmesh-status:status/prod.yaml") + "\n"; got != report2 {
		t.Errorf("status file %q", got)
	}
	if got := s.bareGit(t, "show", "gitmesh-status:NOTES.md"); got != "raced" {
		t.Errorf("NOTES.md %q", got)
	}
	if got := count(t, s, "gitmesh-status"); got != "3" {
		t.Errorf("%s commits, want 3", got)
	}
}

func TestRaceWithSameReportMakesNoCommit(t *testing.T) {
	s := newServer(t, meshSeed)
	w := newWriter(t, s.serveDaemon(t), nil)
	write(t, w, report1, "drift: first")
	var other string
	w.beforePush = func() {
		if other == "" { // another replica wrote the very same report
			other = s.humanCommit(t, "gitmesh-status", "drift: from replica b", map[string]string{"status/prod.yaml": report2})
		}
	}
	res := write(t, w, report2, "drift: from replica a")
	if res.Committed || res.Commit != other || res.Attempts != 2 {
		t.Errorf("result %+v, want no commit, tip %s, 2 attempts", res, other)
	}
}

// TestServerSideRace moves the branch inside receive-pack, after the
// references were advertised to us: only git's compare-and-swap of the
// old value stops the push, and the writer must still retry, not force.
func TestServerSideRace(t *testing.T) {
	s := newServer(t, meshSeed)
	var logs bytes.Buffer
	w := newWriter(t, s.serveDaemon(t), func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	write(t, w, report1, "drift: first")
	human := s.humanCommit(t, "gitmesh-status", "notes: in flight", map[string]string{"NOTES.md": "x\n"})
	// Put the human commit aside and the branch back, then let the hook
	// move the branch to it during our next push, once.
	s.bareGit(t, "update-ref", "refs/heads/human", human)
	s.bareGit(t, "update-ref", "refs/heads/gitmesh-status", human+"^")
	hook := "#!/bin/sh\nmarker=\"$GIT_DIR/raced\"\n[ -e \"$marker\" ] && exit 0\ntouch \"$marker\"\n" +
		"env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES " +
		"git update-ref refs/heads/gitmesh-status refs/heads/human\n"
	if err := os.WriteFile(filepath.Join(s.bare, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	res := write(t, w, report2, "drift: second")
	if !res.Committed || res.Attempts != 2 {
		t.Fatalf("result %+v, want committed on the 2nd attempt", res)
	}
	if _, err := os.Stat(filepath.Join(s.bare, "raced")); err != nil {
		t.Fatal("the hook never ran")
	}
	t.Log(strings.TrimSpace(logs.String()))
	if strings.Contains(logs.String(), "required to be") {
		t.Error("go-git's advertised-refs check caught the race; the server-side path was not exercised")
	}
	if got := s.bareGit(t, "rev-parse", "gitmesh-status^"); got != human {
		t.Errorf("parent %s, want %s (moved by the hook)", got, human)
	}
}

func TestGivesUpWithoutForcing(t *testing.T) {
	s := newServer(t, meshSeed)
	w := newWriter(t, s.serveDaemon(t), func(o *Options) { o.MaxAttempts = 3 })
	write(t, w, report1, "drift: first")
	n := 0
	w.beforePush = func() {
		n++
		s.humanCommit(t, "gitmesh-status", "notes: busy human", map[string]string{"NOTES.md": strings.Repeat("x", n) + "\n"})
	}
	res, err := w.Write(context.Background(), Change{Path: "status/prod.yaml", Content: []byte(report2), Message: "drift: second"})
	if !errors.Is(err, ErrContention) || res.Attempts != 3 {
		t.Fatalf("got %+v, %v; want ErrContention after 3 attempts", res, err)
	}
	t.Log(err)
	if got := s.bareGit(t, "log", "--format=%s", "gitmesh-status"); got != "notes: busy human\nnotes: busy human\nnotes: busy human\ndrift: first" {
		t.Errorf("history:\n%s", got)
	}
}

func TestConfigBranchPath(t *testing.T) {
	s := newServer(t, meshSeed)
	w := newWriter(t, "file://"+s.bare, func(o *Options) { o.Branch = "main" })
	mainTip := s.bareGit(t, "rev-parse", "main")
	write(t, w, report1, "drift: first")
	if got := s.bareGit(t, "rev-parse", "main^"); got != mainTip {
		t.Errorf("parent %s, want the config tip %s", got, mainTip)
	}
	got := s.bareGit(t, "ls-tree", "-r", "--name-only", "main")
	if got != "mesh.cue\nservices/reviews.cue\nstatus/prod.yaml" {
		t.Errorf("tree:\n%s", got)
	}
	if s.bareGit(t, "rev-parse", "main:services") != s.bareGit(t, "rev-parse", mainTip+":services") {
		t.Error("services/ tree changed")
	}
	write(t, w, report2, "drift: second") // file:// again, on top
	if got := count(t, s, "main"); got != "3" {
		t.Errorf("%s commits, want 3", got)
	}
}

func TestRead(t *testing.T) {
	s := newServer(t, meshSeed)
	w := newWriter(t, s.serveDaemon(t), nil)
	ctx := context.Background()
	if _, err := w.Read(ctx, "status/prod.yaml"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing branch: %v, want ErrNotFound", err)
	}
	write(t, w, report1, "drift: first")
	b, err := w.Read(ctx, "status/prod.yaml")
	if err != nil || string(b) != report1 {
		t.Errorf("Read = %q, %v", b, err)
	}
	if _, err := w.Read(ctx, "status/other.yaml"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v, want ErrNotFound", err)
	}
	// A fresh writer (a restart) reads what the last one wrote.
	b, err = newWriter(t, w.o.URL, nil).Read(ctx, "status/prod.yaml")
	if err != nil || string(b) != report1 {
		t.Errorf("after restart Read = %q, %v", b, err)
	}
}

func TestHTTPBasicAuth(t *testing.T) {
	s := newServer(t, meshSeed)
	url := s.serveHTTP(t, "s3cret-pass")
	pass := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pass, []byte("s3cret-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, url, func(o *Options) {
		o.Credentials = source.Credentials{Username: "bot", PasswordFile: pass}
		o.InsecureHTTP = true
	})
	write(t, w, report1, "drift: first")
	write(t, w, report2, "drift: second")
	if got := count(t, s, "gitmesh-status"); got != "2" {
		t.Errorf("%s commits, want 2", got)
	}
	if err := os.WriteFile(pass, []byte("wrong-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := w.Write(context.Background(), Change{Path: "status/prod.yaml", Content: []byte("x"), Message: "m"})
	if !errors.Is(err, source.ErrAuth) || strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("wrong password: %v", err)
	}
}

func TestErrors(t *testing.T) {
	s := newServer(t, meshSeed)
	url := s.serveDaemon(t)
	w := newWriter(t, strings.Replace(url, "status.git", "missing.git", 1), nil)
	_, err := w.Write(context.Background(), Change{Path: "status/prod.yaml", Content: []byte("x"), Message: "m"})
	if err == nil || !strings.Contains(err.Error(), "missing.git@gitmesh-status") || !source.Permanent(err) {
		t.Errorf("missing repository: %v", err)
	}
	for _, p := range []string{"", "/abs", "a/../b", "./a", ".git/config", "a//b", "a/"} {
		if _, err := w.Write(context.Background(), Change{Path: p, Content: []byte("x"), Message: "m"}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	if _, err := New(Options{URL: "https://user:pw@example.com/x.git"}); !errors.Is(err, source.ErrCredentialInURL) {
		t.Errorf("credentials in URL: %v", err)
	}
	w = newWriter(t, url, nil)
	write(t, w, report1, "drift: first")
	_, err = w.Write(context.Background(), Change{Path: "status", Content: []byte("x"), Message: "m"})
	if err == nil || !strings.Contains(err.Error(), `"status" is not a regular file`) {
		t.Errorf("directory as file: %v", err)
	}
}

// BenchmarkWrite measures one changed report committed and pushed over
// git:// on loopback, fetch included.
func BenchmarkWrite(b *testing.B) {
	s := newServer(b, meshSeed)
	w := newWriter(b, s.serveDaemon(b), nil)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		c := Change{Path: "status/prod.yaml", Content: []byte(report1 + strings.Repeat("#\n", i)), Message: "drift: bench"}
		if _, err := w.Write(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteUnchanged measures the common case: the report means the
// same, so one fetch and no push.
func BenchmarkWriteUnchanged(b *testing.B) {
	s := newServer(b, meshSeed)
	w := newWriter(b, s.serveDaemon(b), nil)
	write(b, w, report1, "drift: first")
	ctx := context.Background()
	for b.Loop() {
		res, err := w.Write(ctx, Change{Path: "status/prod.yaml", Content: []byte(report1), Message: "m"})
		if err != nil || res.Committed {
			b.Fatal(res, err)
		}
	}
}
