package statusgit

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		writeFiles(t, work, seed)
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
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+s.home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Human", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Human", "GIT_COMMITTER_EMAIL=ada@example.com",
		"GIT_AUTHOR_DATE=2026-11-21T09:30:00Z", "GIT_COMMITTER_DATE=2026-11-21T09:30:00Z",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
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
	writeFiles(t, dir, files)
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

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// serveDaemon serves the base directory with `git daemon` over git://,
// pushes allowed, and returns the repository URL.
func (s *server) serveDaemon(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("git", "daemon", "--export-all", "--enable=receive-pack", "--reuseaddr",
		"--informative-errors", "--base-path="+s.base, "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), s.base)
	cmd.Env = append(os.Environ(), "HOME="+s.home, "GIT_CONFIG_NOSYSTEM=1")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start git daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("git daemon did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "git://" + addr + "/status.git"
}

// serveHTTP serves the base directory with git-http-backend behind Go's
// CGI handler, demanding basic auth as user "bot" with password.
func (s *server) serveHTTP(t testing.TB, password string) string {
	t.Helper()
	const backend = "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git-http-backend not installed")
	}
	h := &cgi.Handler{
		Path:   backend,
		Env:    []string{"GIT_PROJECT_ROOT=" + s.base, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + s.home},
		Stderr: io.Discard,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || u != "bot" || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/status.git"
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
