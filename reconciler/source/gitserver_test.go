package source

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

// testRepo is a bare repository seeded by a working clone, both real Git
// repositories made with the git CLI, as a user would.
type testRepo struct {
	base string // directory holding mesh.git, the servers' root
	bare string // base/mesh.git
	work string // a clone to commit and push from
	home string // HOME for git, so no user config leaks in
}

func newTestRepo(t testing.TB, files map[string]string) *testRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git CLI not installed")
	}
	root := t.TempDir()
	r := &testRepo{
		base: filepath.Join(root, "srv"),
		work: filepath.Join(root, "work"),
		home: filepath.Join(root, "home"),
	}
	r.bare = filepath.Join(r.base, "mesh.git")
	for _, d := range []string{r.base, r.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.git(t, root, "init", "-q", "--bare", "-b", "main", r.bare)
	r.git(t, r.bare, "config", "http.receivepack", "true")
	r.git(t, root, "init", "-q", "-b", "main", r.work)
	r.git(t, r.work, "remote", "add", "origin", r.bare)
	r.commit(t, "seed", files)
	return r
}

// git runs the git CLI in dir with a clean, deterministic environment.
func (r *testRepo) git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+r.home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Mesh Author", "GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=Mesh Author", "GIT_COMMITTER_EMAIL=author@example.com",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (a value starting with "->" makes a symlink to the
// rest), commits and pushes to the bare repository; it returns the SHA.
func (r *testRepo) commit(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	writeFiles(t, r.work, files)
	r.git(t, r.work, "add", "-A")
	r.git(t, r.work, "commit", "-q", "-m", msg)
	r.git(t, r.work, "push", "-q", "origin", "main")
	return r.git(t, r.work, "rev-parse", "HEAD")
}

// freePort finds a loopback port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serveDaemon serves the base directory with `git daemon` over git:// and
// returns the repository URL.
func (r *testRepo) serveDaemon(t testing.TB) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command("git", "daemon", "--export-all", "--reuseaddr", "--informative-errors",
		"--base-path="+r.base, "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), r.base)
	cmd.Env = append(os.Environ(), "HOME="+r.home, "GIT_CONFIG_NOSYSTEM=1")
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
	return "git://" + addr + "/mesh.git"
}

// serveHTTP serves the base directory with git-http-backend behind Go's
// CGI handler, in process. With a password it demands basic auth as
// user "mesh" first.
func (r *testRepo) serveHTTP(t testing.TB, password string) string {
	t.Helper()
	const backend = "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git-http-backend not installed")
	}
	h := &cgi.Handler{
		Path:   backend,
		Env:    []string{"GIT_PROJECT_ROOT=" + r.base, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + r.home},
		Stderr: io.Discard, // "not a git repository" for the 404 case
	}
	var handler http.Handler = h
	if password != "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			u, p, ok := req.BasicAuth()
			if !ok || u != "mesh" || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, req)
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL + "/mesh.git"
}
