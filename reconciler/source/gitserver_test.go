package source

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gitmesh/gitmesh/internal/gittest"
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
	return gittest.Run(t, gittest.Env(r.home, gittest.Person{Name: "Mesh Author", Email: "author@example.com"}), dir, args...)
}

// commit writes files (a value starting with "->" makes a symlink to the
// rest), commits and pushes to the bare repository; it returns the SHA.
func (r *testRepo) commit(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	gittest.WriteFiles(t, r.work, files)
	r.git(t, r.work, "add", "-A")
	r.git(t, r.work, "commit", "-q", "-m", msg)
	r.git(t, r.work, "push", "-q", "origin", "main")
	return r.git(t, r.work, "rev-parse", "HEAD")
}

// serveDaemon serves the base directory with `git daemon` over git:// and
// returns the repository URL.
func (r *testRepo) serveDaemon(t testing.TB) string {
	t.Helper()
	return gittest.StartDaemon(t, r.base, gittest.Env(r.home, gittest.Person{})).URL("mesh.git")
}

// serveHTTP serves the base directory with git-http-backend, in process.
// With a password it demands basic auth as user "mesh" first.
func (r *testRepo) serveHTTP(t testing.TB, password string) string {
	t.Helper()
	user := ""
	if password != "" {
		user = "mesh"
	}
	return gittest.ServeHTTP(t, r.base, r.home, user, password) + "/mesh.git"
}
