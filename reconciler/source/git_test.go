package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/gitmesh/gitmesh/internal/gittest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func readString(t *testing.T, fsys fs.FS, name string) string {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// TestGitSourceTransports clones over each transport, reads the files,
// sees that an unchanged remote costs an ls-remote and no fetch, and that a
// pushed commit is fetched incrementally.
func TestGitSourceTransports(t *testing.T) {
	r := newTestRepo(t, map[string]string{"services/reviews.cue": "reviews: v1\n"})
	for _, tc := range []struct {
		name string
		url  func() string
	}{
		{"plain path", func() string { return r.bare }},
		{"file", func() string { return "file://" + r.bare }},
		{"git daemon", func() string { return r.serveDaemon(t) }},
		{"smart http", func() string { return r.serveHTTP(t, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			head := r.git(t, r.work, "rev-parse", "HEAD")
			src, err := NewGit(GitOptions{URL: tc.url()})
			if err != nil {
				t.Fatal(err)
			}
			rev, err := src.Latest(ctx)
			if err != nil {
				t.Fatalf("Latest: %v", err)
			}
			if rev.ID != head || rev.Short != head[:12] {
				t.Fatalf("ID %q short %q, want %q", rev.ID, rev.Short, head)
			}
			if got := readString(t, rev.Files, "services/reviews.cue"); got != "reviews: v1\n" {
				t.Fatalf("content %q", got)
			}
			if rev.Author != "Mesh Author <author@example.com>" || rev.Message == "" || rev.Time.IsZero() {
				t.Fatalf("metadata %q %q %v", rev.Author, rev.Message, rev.Time)
			}
			again, err := src.Latest(ctx)
			if err != nil || again.ID != head {
				t.Fatalf("second Latest: %v %q", err, again.ID)
			}
			if st := src.Stats(); st != (GitStats{Lists: 2, Fetches: 1, Clones: 1}) {
				t.Fatalf("unchanged remote: stats %+v, want 2 lists, 1 fetch", st)
			}

			next := r.commit(t, "v2 "+tc.name, map[string]string{"services/reviews.cue": "reviews: " + tc.name + "\n"})
			rev2, err := src.Latest(ctx)
			if err != nil {
				t.Fatalf("Latest after push: %v", err)
			}
			if rev2.ID != next {
				t.Fatalf("after push ID %q, want %q", rev2.ID, next)
			}
			if got := readString(t, rev2.Files, "services/reviews.cue"); got != "reviews: "+tc.name+"\n" {
				t.Fatalf("content after push %q", got)
			}
			// The old revision stays readable: revisions are immutable.
			if got := readString(t, rev.Files, "services/reviews.cue"); got != "reviews: v1\n" {
				t.Fatalf("old revision changed to %q", got)
			}
			if st := src.Stats(); st != (GitStats{Lists: 3, Fetches: 2, Clones: 1}) {
				t.Fatalf("after push: stats %+v, want 3 lists, 2 fetches, 1 clone", st)
			}
			// Put the seed content back for the next transport.
			r.commit(t, "reset "+tc.name, map[string]string{"services/reviews.cue": "reviews: v1\n"})
		})
	}
}

// TestGitSourcePathAndSymlinks serves a subdirectory and checks that a
// committed symlink to /etc/passwd is a symlink, never the host's file.
func TestGitSourcePathAndSymlinks(t *testing.T) {
	r := newTestRepo(t, map[string]string{
		"README.md":                 "not the mesh\n",
		"mesh/services/reviews.cue": "reviews: 1\n",
		"mesh/passwd.cue":           "->/etc/passwd",
		"mesh/escape.cue":           "->../README.md",
		"mesh/alias.cue":            "->services/reviews.cue",
		"mesh/loop.cue":             "->loop.cue",
	})
	src, err := NewGit(GitOptions{URL: r.bare, Path: "mesh/"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := src.Latest(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	files := rev.Files
	rl, ok := files.(fs.ReadLinkFS)
	if !ok {
		t.Fatal("Files does not implement fs.ReadLinkFS")
	}
	if _, err := fs.Stat(files, "README.md"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file outside --path visible: %v", err)
	}
	if got := readString(t, files, "alias.cue"); got != "reviews: 1\n" {
		t.Fatalf("in-tree symlink read %q", got)
	}
	for name, target := range map[string]string{"passwd.cue": "/etc/passwd", "escape.cue": "../README.md", "loop.cue": "loop.cue"} {
		fi, err := rl.Lstat(name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("Lstat %s: %v mode %v, want a symlink", name, err, fi)
		}
		if got, err := rl.ReadLink(name); err != nil || got != target {
			t.Fatalf("ReadLink %s = %q %v, want %q", name, got, err, target)
		}
		if b, err := fs.ReadFile(files, name); err == nil {
			t.Fatalf("reading %s followed the link out of the tree: %q", name, b)
		}
	}
	// Walking lists the links as links, the way the loader sees them.
	var links []string
	err = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			links = append(links, p)
		}
		return nil
	})
	if err != nil || strings.Join(links, ",") != "alias.cue,escape.cue,loop.cue,passwd.cue" {
		t.Fatalf("walk: %v, links %v", err, links)
	}
}

// TestGitSourceErrors checks the transient/permanent classification.
func TestGitSourceErrors(t *testing.T) {
	r := newTestRepo(t, map[string]string{"mesh/a.cue": "a: 1\n"})
	httpURL := r.serveHTTP(t, "")
	for _, tc := range []struct {
		name      string
		opts      GitOptions
		permanent bool
		reason    error
	}{
		{"server down", GitOptions{URL: fmt.Sprintf("git://127.0.0.1:%d/mesh.git", gittest.FreePort(t))}, false, nil},
		{"http server down", GitOptions{URL: fmt.Sprintf("http://127.0.0.1:%d/mesh.git", gittest.FreePort(t))}, false, nil},
		{"missing branch", GitOptions{URL: r.bare, Branch: "nope"}, true, ErrBranchNotFound},
		{"missing path", GitOptions{URL: r.bare, Path: "nope"}, true, ErrPathNotFound},
		{"path is a file", GitOptions{URL: r.bare, Path: "mesh/a.cue"}, true, ErrPathNotFound},
		{"missing repository", GitOptions{URL: strings.TrimSuffix(httpURL, "mesh.git") + "other.git"}, true, ErrRepoNotFound},
		{"ssh without key", GitOptions{URL: "ssh://git@127.0.0.1:1/mesh.git"}, true, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Timeout = 5 * time.Second
			src, err := NewGit(tc.opts)
			if err == nil {
				_, err = src.Latest(testCtx(t))
			}
			if err == nil {
				t.Fatal("no error")
			}
			if Permanent(err) != tc.permanent || Transient(err) == tc.permanent {
				t.Fatalf("permanent=%v transient=%v, want permanent=%v: %v", Permanent(err), Transient(err), tc.permanent, err)
			}
			if tc.reason != nil && !errors.Is(err, tc.reason) {
				t.Fatalf("error %q is not %v", err, tc.reason)
			}
			t.Logf("%v", err)
		})
	}
}

// TestGitSourceBasicAuth fetches through an http-backend that demands basic
// auth, with the password from a file, and checks that no secret reaches
// an error or String().
func TestGitSourceBasicAuth(t *testing.T) {
	const password = "s3cret-Pa55word-value"
	r := newTestRepo(t, map[string]string{"a.cue": "a: 1\n"})
	url := r.serveHTTP(t, password)
	dir := t.TempDir()
	good := filepath.Join(dir, "password")
	bad := filepath.Join(dir, "wrong")
	os.WriteFile(good, []byte(password+"\n"), 0o600)
	os.WriteFile(bad, []byte("wrong-"+password+"\n"), 0o600)

	creds := Credentials{Username: "mesh", PasswordFile: good}
	src, err := NewGit(GitOptions{URL: url, Credentials: creds, InsecureHTTPCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Latest(testCtx(t)); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	if strings.Contains(src.String(), password) {
		t.Fatalf("String() holds the password: %s", src)
	}

	for _, tc := range []struct {
		name   string
		opts   GitOptions
		reason error
	}{
		{"wrong password", GitOptions{URL: url, InsecureHTTPCredentials: true, Credentials: Credentials{Username: "mesh", PasswordFile: bad}}, ErrAuth},
		{"no password", GitOptions{URL: url}, ErrAuth},
		{"plain http refused", GitOptions{URL: url, Credentials: creds}, ErrConfig},
		{"password in URL", GitOptions{URL: strings.Replace(url, "http://", "http://mesh:"+password+"@", 1)}, ErrCredentialInURL},
		{"token as user in URL", GitOptions{URL: strings.Replace(url, "http://", "http://"+password+"@", 1)}, ErrCredentialInURL},
		{"missing env", GitOptions{URL: url, Credentials: Credentials{Username: "mesh", PasswordEnv: "GITMESH_TEST_UNSET_PASSWORD"}}, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewGit(tc.opts)
			if err == nil {
				if strings.Contains(src.String(), password) {
					t.Fatalf("String() holds the password: %s", src)
				}
				_, err = src.Latest(testCtx(t))
			}
			if !errors.Is(err, tc.reason) || !Permanent(err) {
				t.Fatalf("error %v, want permanent %v", err, tc.reason)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error holds the password: %v", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestGitSourceCacheDir keeps the clone on disk: a restarted source finds
// the tip already fetched and does not fetch again.
func TestGitSourceCacheDir(t *testing.T) {
	r := newTestRepo(t, map[string]string{"a.cue": "a: 1\n"})
	cache := t.TempDir()
	first, err := NewGit(GitOptions{URL: r.bare, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := first.Latest(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	second, _ := NewGit(GitOptions{URL: r.bare, CacheDir: cache})
	rev2, err := second.Latest(testCtx(t))
	if err != nil || rev2.ID != rev.ID {
		t.Fatalf("restart: %v %q", err, rev2.ID)
	}
	if st := second.Stats(); st.Fetches != 0 {
		t.Fatalf("restart fetched again: %+v", st)
	}
	next := r.commit(t, "two", map[string]string{"a.cue": "a: 2\n"})
	rev3, err := second.Latest(testCtx(t))
	if err != nil || rev3.ID != next || readString(t, rev3.Files, "a.cue") != "a: 2\n" {
		t.Fatalf("incremental fetch into cache: %v %q", err, rev3.ID)
	}
}

// TestTreeFS reads an older revision from a local repository's object
// store, as `gitmesh check --base` will.
func TestTreeFS(t *testing.T) {
	r := newTestRepo(t, map[string]string{"mesh/a.cue": "a: 1\n"})
	r.commit(t, "two", map[string]string{"mesh/a.cue": "a: 2\n", "mesh/b/c.cue": "c: 1\n"})
	repo, err := git.PlainOpen(r.work)
	if err != nil {
		t.Fatal(err)
	}
	for rev, want := range map[string]string{"HEAD~1": "a: 1\n", "main": "a: 2\n", "origin/main": "a: 2\n"} {
		files, err := TreeFS(repo, rev, "mesh")
		if err != nil {
			t.Fatalf("TreeFS %s: %v", rev, err)
		}
		if got := readString(t, files, "a.cue"); got != want {
			t.Fatalf("%s: a.cue = %q, want %q", rev, got, want)
		}
	}
	files, err := TreeFS(repo, "HEAD", "mesh")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstestFS(files, "a.cue", "b/c.cue"); err != nil {
		t.Fatal(err)
	}
	if _, err := TreeFS(repo, "no-such-rev", ""); err == nil {
		t.Fatal("unknown revision accepted")
	}
}

// TestGitSourceConcurrentReads reads an old revision while the source
// fetches new ones into the same storage (run with -race).
func TestGitSourceConcurrentReads(t *testing.T) {
	r := newTestRepo(t, map[string]string{"a.cue": "a: 0\n", "b/c.cue": "c: 0\n"})
	src, err := NewGit(GitOptions{URL: r.bare})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	old, err := src.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			err := fs.WalkDir(old.Files, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				_, err = fs.ReadFile(old.Files, p)
				return err
			})
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	for i := 1; i <= 3; i++ {
		want := r.commit(t, fmt.Sprint(i), map[string]string{"a.cue": fmt.Sprintf("a: %d\n", i)})
		rev, err := src.Latest(ctx)
		if err != nil || rev.ID != want {
			t.Fatalf("Latest %d: %v %q", i, err, rev.ID)
		}
	}
	close(done)
	if err := <-readErr; err != nil {
		t.Fatalf("concurrent read: %v", err)
	}
	if got := readString(t, old.Files, "a.cue"); got != "a: 0\n" {
		t.Fatalf("old revision reads %q", got)
	}
}

// BenchmarkGitLatest measures the two costs that matter over smart HTTP:
// a fresh shallow clone, and the "has the remote moved?" check when it
// has not (one ls-remote, no fetch).
func BenchmarkGitLatest(b *testing.B) {
	files := map[string]string{}
	for i := 0; i < 500; i++ {
		files[fmt.Sprintf("services/s%02d/svc%03d.cue", i/50, i)] = fmt.Sprintf("svc%03d: port: %d\n", i, 8000+i)
	}
	r := newTestRepo(b, files)
	srvURL := r.serveHTTP(b, "")
	ctx := context.Background()
	b.Run("clone", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			src, _ := NewGit(GitOptions{URL: srvURL})
			if _, err := src.Latest(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		src, _ := NewGit(GitOptions{URL: srvURL})
		if _, err := src.Latest(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := src.Latest(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("walk-and-read", func(b *testing.B) {
		src, _ := NewGit(GitOptions{URL: srvURL})
		rev, err := src.Latest(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			fs.WalkDir(rev.Files, ".", func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					_, err = fs.ReadFile(rev.Files, p)
				}
				return err
			})
		}
	})
}

// TestGitSourceFSConformance runs testing/fstest over a revision with
// in-tree file and directory symlinks, which Open must follow.
func TestGitSourceFSConformance(t *testing.T) {
	r := newTestRepo(t, map[string]string{
		"mesh/services/reviews.cue": "reviews: 1\n",
		"mesh/alias.cue":            "->services/reviews.cue",
		"mesh/dirlink":              "->services",
	})
	src, _ := NewGit(GitOptions{URL: r.bare, Path: "mesh"})
	rev, err := src.Latest(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := fstestFS(rev.Files, "alias.cue", "services/reviews.cue", "dirlink"); err != nil {
		t.Fatal(err)
	}
}
