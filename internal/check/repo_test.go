package check

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/internal/gittest"
)

// testRepo is a real Git repository built with the git CLI, holding a mesh
// in the subdirectory "mesh" so the repo-relative paths are exercised.
type testRepo struct {
	root string
}

// meshSub is where test repositories keep their mesh.
const meshSub = "mesh"

// newTestRepo initialises a repository and commits files (mesh-relative)
// on branch main. Identity and dates are fixed, so commits are the same on
// every run.
func newTestRepo(t testing.TB, files fs.FS) *testRepo {
	t.Helper()
	r := &testRepo{root: t.TempDir()}
	r.git(t, "init", "-q", "-b", "main")
	r.writeFS(t, files)
	r.commit(t, "base")
	return r
}

func (r *testRepo) meshDir() string { return filepath.Join(r.root, meshSub) }

func (r *testRepo) git(t testing.TB, args ...string) string {
	t.Helper()
	return gittest.Run(t, gittest.Env("", gittest.Person{Name: "gitmesh test", Email: "test@gitmesh.invalid", Date: "2026-01-01T00:00:00Z"}), r.root, args...)
}

func (r *testRepo) commit(t testing.TB, msg string) {
	t.Helper()
	r.git(t, "add", "-A")
	r.git(t, "commit", "-q", "--allow-empty", "-m", msg)
}

// branch starts a new branch from rev with a clean work tree.
func (r *testRepo) branch(t testing.TB, name, from string) {
	t.Helper()
	r.git(t, "checkout", "-q", "-f", "-B", name, from)
	r.git(t, "clean", "-q", "-fdx")
}

func (r *testRepo) writeFS(t testing.TB, files fs.FS) {
	t.Helper()
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		r.write(t, p, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// write writes a mesh-relative file.
func (r *testRepo) write(t testing.TB, file, content string) {
	t.Helper()
	p := filepath.Join(r.meshDir(), filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// edit replaces old with new in a mesh file, failing when old is missing
// so a changed example cannot silently void a test.
func (r *testRepo) edit(t testing.TB, file, old, new string) {
	t.Helper()
	p := filepath.Join(r.meshDir(), filepath.FromSlash(file))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	r.write(t, file, strings.Replace(string(b), old, new, 1))
}

// bookinfo is the example mesh the PR cases start from, without its
// traffic tests: these cases change weights and authorization on purpose
// to test findings and the diff, which the example's tests would (rightly)
// fail. traffic_test.go checks the tests with the example whole
// (bookinfoWithTests).
func bookinfo() fs.FS { return withoutDir{bookinfoWithTests(), "tests"} }

// bookinfoWithTests is the example as it is, traffic tests included.
func bookinfoWithTests() fs.FS { return os.DirFS(filepath.Join("..", "..", "examples", "bookinfo")) }

// withoutDir hides one top-level directory of an FS.
type withoutDir struct {
	fs.FS
	dir string
}

func (w withoutDir) Open(name string) (fs.File, error) {
	if name == w.dir || strings.HasPrefix(name, w.dir+"/") {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return w.FS.Open(name)
}

func (w withoutDir) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := fs.ReadDir(w.FS, name)
	if err != nil || name != "." {
		return es, err
	}
	out := es[:0]
	for _, e := range es {
		if e.Name() != w.dir {
			out = append(out, e)
		}
	}
	return out, nil
}
