// Package gittest runs real Git for tests: the git CLI in a clean
// environment, `git daemon` and git-http-backend on loopback. The source,
// the status-branch writer and the end-to-end tests all talk to real Git
// servers; this is the one place that knows how to start them.
package gittest

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
	"syscall"
	"testing"
	"time"
)

// Person is the author and committer of a test's commits; Date, when set,
// fixes both dates so commits are the same on every run.
type Person struct {
	Name, Email, Date string
}

// Env is the environment for the git CLI: no system or user configuration
// (HOME is home, or /dev/null as the global config when home is empty) and
// who as author and committer.
func Env(home string, who Person) []string {
	env := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME="+who.Name, "GIT_AUTHOR_EMAIL="+who.Email,
		"GIT_COMMITTER_NAME="+who.Name, "GIT_COMMITTER_EMAIL="+who.Email)
	if home != "" {
		env = append(env, "HOME="+home)
	} else {
		env = append(env, "GIT_CONFIG_GLOBAL=/dev/null")
	}
	if who.Date != "" {
		env = append(env, "GIT_AUTHOR_DATE="+who.Date, "GIT_COMMITTER_DATE="+who.Date)
	}
	return env
}

// Run runs git in dir with env and returns its trimmed output; a failure
// fails the test with git's output.
func Run(t testing.TB, env []string, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// WriteFiles writes files under dir, creating directories; a content of
// "->TARGET" makes a symlink to TARGET instead.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// FreePort finds a loopback port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Daemon is a `git daemon` serving the repositories under a directory over
// git:// on loopback, pushes allowed.
type Daemon struct {
	port int
	cmd  *exec.Cmd
}

// StartDaemon serves base and waits until the daemon accepts connections;
// it is stopped when the test ends.
func StartDaemon(t testing.TB, base string, env []string) *Daemon {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is required (CI installs it)")
	}
	d := &Daemon{port: FreePort(t)}
	d.cmd = exec.Command("git", "daemon", "--export-all", "--enable=receive-pack", "--reuseaddr",
		"--informative-errors", "--base-path="+base, "--listen=127.0.0.1", fmt.Sprintf("--port=%d", d.port), base)
	d.cmd.Env = env
	// Its own process group, so Stop also kills the per-connection
	// children; no stderr pipe, which those children would hold open.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start git daemon: %v", err)
	}
	t.Cleanup(d.Stop)
	addr := fmt.Sprintf("127.0.0.1:%d", d.port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("git daemon did not listen on %s", addr)
		}
	}
}

// URL is the git:// URL of the repository at path under the served base.
func (d *Daemon) URL(path string) string { return fmt.Sprintf("git://127.0.0.1:%d/%s", d.port, path) }

// Stop kills the daemon and its connections (a Git server going away).
func (d *Daemon) Stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		d.cmd.Wait()
		d.cmd = nil
	}
}

// ServeHTTP serves the repositories under base with git-http-backend behind
// Go's CGI handler (pushes need http.receivepack on the repository) and
// returns the server's URL. With a user, it demands basic auth as user
// with password first. It skips the test when git-http-backend is missing.
func ServeHTTP(t testing.TB, base, home, user, password string) string {
	t.Helper()
	const backend = "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git-http-backend not installed")
	}
	h := &cgi.Handler{
		Path:   backend,
		Env:    []string{"GIT_PROJECT_ROOT=" + base, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + home},
		Stderr: io.Discard, // "not a git repository" for the 404 cases
	}
	var handler http.Handler = h
	if user != "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			u, p, ok := req.BasicAuth()
			if !ok || u != user || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, req)
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}
