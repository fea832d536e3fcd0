package statusgit

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/gittest"
)

// server is a bare repository on disk, served by real Git servers on
// loopback, plus a git CLI environment for the "humans" of the tests.
type server struct {
	root string // temp dir holding everything
	base string // served directory, holds status.git
	bare string // base/status.git
	home string // HOME for git, so no user config leaks in
}

// newServer makes a bare repository. With seed files, main gets one commit
// holding them (a mesh config repository); without, it stays empty.
func newServer(t testing.TB, seed map[string]string) *server {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git CLI not installed")
	}
	root := t.TempDir()
	s := &server{root: root, base: filepath.Join(root, "srv"), home: filepath.Join(root, "home")}
	s.bare = filepath.Join(s.base, "status.git")
	for _, d := range []string{s.base, s.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.git(t, root, "init", "-q", "--bare", "-b", "main", s.bare)
	s.git(t, s.bare, "config", "http.receivepack", "true")
	if seed != nil {
		work := filepath.Join(root, "seed")
		s.git(t, root, "init", "-q", "-b", "main", work)
		gittest.WriteFiles(t, work, seed)
		s.git(t, work, "add", "-A")
		s.git(t, work, "commit", "-q", "-m", "mesh: seed")
		s.git(t, work, "push", "-q", s.bare, "main")
	}
	return s
}

// git runs the git CLI in dir with a clean, deterministic environment; the
// "human" is Ada.
func (s *server) git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return gittest.Run(t, gittest.Env(s.home, gittest.Person{Name: "Ada Human", Email: "ada@example.com", Date: "2026-11-21T09:30:00Z"}), dir, args...)
}

// bareGit runs git inside the bare repository (for assertions).
func (s *server) bareGit(t testing.TB, args ...string) string {
	t.Helper()
	return s.git(t, s.bare, args...)
}

// humanCommit clones branch, writes files, commits with msg and pushes
// without force, as a person would from their laptop. It returns the SHA.
func (s *server) humanCommit(t testing.TB, branch, msg string, files map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp(s.root, "human-")
	if err != nil {
		t.Fatal(err)
	}
	s.git(t, s.root, "clone", "-q", "-b", branch, s.bare, dir)
	gittest.WriteFiles(t, dir, files)
	s.git(t, dir, "add", "-A")
	s.git(t, dir, "commit", "-q", "-m", msg)
	s.git(t, dir, "push", "-q", "origin", branch)
	return s.git(t, dir, "rev-parse", "HEAD")
}

// logP shows the branch history with patches in the test output, so a
// reader can judge how the history reads.
func (s *server) logP(t testing.TB, branch string) {
	t.Helper()
	t.Logf("git log -p %s:\n%s", branch, s.bareGit(t, "log", "-p", "--format=commit %h%nAuthor: %an <%ae>%nDate:   %aI%n%n%w(0,4,4)%B", branch))
}

// serveDaemon serves the base directory with `git daemon` over git://,
// pushes allowed, and returns the repository URL.
func (s *server) serveDaemon(t testing.TB) string {
	t.Helper()
	return gittest.StartDaemon(t, s.base, gittest.Env(s.home, gittest.Person{})).URL("status.git")
}

// serveHTTP serves the base directory with git-http-backend, demanding
// basic auth as user "bot" with password.
func (s *server) serveHTTP(t testing.TB, password string) string {
	t.Helper()
	return gittest.ServeHTTP(t, s.base, s.home, "bot", password) + "/status.git"
}

// clock returns a Now that starts at a fixed instant and advances a minute
// per call, so commit dates in the logs are stable and ordered.
func clock() func() time.Time {
	t := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Minute)
		return t
	}
}
