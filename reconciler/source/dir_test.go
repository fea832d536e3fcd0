package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gitmesh/gitmesh/internal/gittest"
)

// fstestFS runs the standard library's fs.FS conformance checks.
func fstestFS(fsys fs.FS, expected ...string) error { return fstest.TestFS(fsys, expected...) }

func newDir(t *testing.T, dir string, opts DirOptions) *DirSource {
	t.Helper()
	opts.Dir = dir
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	src, err := NewDir(opts)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestDirSourceIDs(t *testing.T) {
	dir := t.TempDir()
	gittest.WriteFiles(t, dir, map[string]string{
		"mesh.cue":             "mesh: 1\n",
		"services/reviews.cue": "reviews: 1\n",
		"README.md":            "ignored\n",
		".git/config":          "hidden\n",
	})
	src := newDir(t, dir, DirOptions{})
	ctx := testCtx(t)
	rev, err := src.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rev.ID, "dir:") || len(rev.ID) != 4+64 || len(rev.Short) != 12 {
		t.Fatalf("ID %q short %q", rev.ID, rev.Short)
	}
	if err := fstestFS(rev.Files, "mesh.cue", "services/reviews.cue"); err != nil {
		t.Fatal(err)
	}
	for _, hidden := range []string{"README.md", ".git/config"} {
		if _, err := fs.Stat(rev.Files, hidden); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s in the snapshot: %v", hidden, err)
		}
	}

	steps := []struct {
		name  string
		edit  map[string]string
		same  bool
		check func(fs.FS) error
	}{
		{"rewrite with same content", map[string]string{"mesh.cue": "mesh: 1\n"}, true, nil},
		{"edit a file outside Include", map[string]string{"README.md": "other\n"}, true, nil},
		{"edit under a hidden dir", map[string]string{".git/HEAD": "x\n"}, true, nil},
		{"change content", map[string]string{"mesh.cue": "mesh: 2\n"}, false, expect("mesh.cue", "mesh: 2\n")},
		{"add a file", map[string]string{"services/ratings.cue": "r: 1\n"}, false, expect("services/ratings.cue", "r: 1\n")},
		{"back to the same content", map[string]string{"mesh.cue": "mesh: 1\n"}, false, expect("mesh.cue", "mesh: 1\n")},
	}
	prev := rev
	for _, st := range steps {
		time.Sleep(5 * time.Millisecond) // distinct mtimes even on coarse clocks
		gittest.WriteFiles(t, dir, st.edit)
		got, err := src.Latest(ctx)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if (got.ID == prev.ID) != st.same {
			t.Fatalf("%s: ID %s -> %s, same=%v", st.name, prev.Short, got.Short, st.same)
		}
		if st.check != nil {
			if err := st.check(got.Files); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		prev = got
	}
	// A second source over the same content agrees on the ID.
	other, err := newDir(t, dir, DirOptions{}).Latest(ctx)
	if err != nil || other.ID != prev.ID {
		t.Fatalf("fresh source ID %q, want %q (%v)", other.ID, prev.ID, err)
	}
	// The first snapshot is a copy: later edits do not show through.
	if err := expect("mesh.cue", "mesh: 1\n")(rev.Files); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(rev.Files, "services/ratings.cue"); err == nil {
		t.Fatal("old snapshot sees a later file")
	}
}

func expect(name, want string) func(fs.FS) error {
	return func(fsys fs.FS) error {
		b, err := fs.ReadFile(fsys, name)
		if err != nil || string(b) != want {
			return fmt.Errorf("%s = %q (%v), want %q", name, b, err, want)
		}
		return nil
	}
}

func TestDirSourceSymlinksAndLimits(t *testing.T) {
	dir := t.TempDir()
	gittest.WriteFiles(t, dir, map[string]string{
		"a.cue":      "a: 1\n",
		"big.cue":    strings.Repeat("x", 2048),
		"passwd.cue": "->/etc/passwd",
		"up.cue":     "->../../outside.cue",
		"alias.cue":  "->a.cue",
	})
	rev, err := newDir(t, dir, DirOptions{MaxFileSize: 1024}).Latest(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	rl := rev.Files.(fs.ReadLinkFS)
	for name, target := range map[string]string{"passwd.cue": "/etc/passwd", "up.cue": "../../outside.cue", "alias.cue": "a.cue"} {
		fi, err := rl.Lstat(name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("Lstat %s: %v, want a symlink", name, err)
		}
		if got, _ := rl.ReadLink(name); got != target {
			t.Fatalf("ReadLink %s = %q", name, got)
		}
	}
	if b, err := fs.ReadFile(rev.Files, "passwd.cue"); err == nil {
		t.Fatalf("symlink to /etc/passwd was followed: %q", b)
	}
	if err := expect("alias.cue", "a: 1\n")(rev.Files); err != nil {
		t.Fatal(err)
	}
	// A file over the bound is listed with its size but not read, so the
	// loader can refuse it by size.
	f, err := rev.Files.Open("big.cue")
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if fi.Size() != 2048 {
		t.Fatalf("big.cue size %d", fi.Size())
	}
	if _, err := io.ReadAll(f); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("reading big.cue: %v, want ErrTooLarge", err)
	}
}

// TestDirSourceWatch runs the watch contract with inotify and with the
// polling fallback.
func TestDirSourceWatch(t *testing.T) {
	for _, poll := range []bool{false, true} {
		name := "inotify"
		if poll {
			name = "poll"
		}
		t.Run(name, func(t *testing.T) { testDirSourceWatch(t, poll) })
	}
}

func testDirSourceWatch(t *testing.T, poll bool) {
	dir := t.TempDir()
	gittest.WriteFiles(t, dir, map[string]string{"a.cue": "a: 1\n"})
	// A debounce longer than the default: this test asserts that a burst
	// from a Go loop is one signal, and on a loaded machine the loop can
	// be descheduled for longer than the default's 10ms.
	src := newDir(t, dir, DirOptions{Poll: poll, Debounce: 50 * time.Millisecond})
	ctx := testCtx(t)
	events := src.Watch(ctx)
	first, err := src.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-events:
		t.Fatal("signal without a change")
	case <-time.After(150 * time.Millisecond):
	}
	// A burst of writes yields one (coalesced) signal.
	start := time.Now()
	for i := 0; i < 5; i++ {
		gittest.WriteFiles(t, dir, map[string]string{"a.cue": fmt.Sprintf("a: %d\n", i+2)})
	}
	select {
	case <-events:
	case <-time.After(3 * time.Second):
		t.Fatal("no signal after a change")
	}
	t.Logf("change seen after %v", time.Since(start))
	next, err := src.Latest(ctx)
	if err != nil || next.ID == first.ID {
		t.Fatalf("after change: %v, ID unchanged %v", err, next.ID == first.ID)
	}
	select {
	case <-events:
		t.Fatal("second signal for one burst")
	case <-time.After(150 * time.Millisecond):
	}
	// Edits Latest ignores signal nothing.
	gittest.WriteFiles(t, dir, map[string]string{"README.md": "x\n", ".git/HEAD": "y\n"})
	select {
	case <-events:
		t.Fatal("signal for a file outside Include")
	case <-time.After(150 * time.Millisecond):
	}
}

// TestDirSourceWatchInotify checks that inotify alone picks up what the
// poll did: the poll interval is an hour, so every signal here comes from
// an event. Edits in a directory created after the watch started, and a
// ConfigMap-style swap of a symlink by rename, are seen too. The pickup
// latency is logged, not asserted (the machine is shared).
func TestDirSourceWatchInotify(t *testing.T) {
	dir := t.TempDir()
	gittest.WriteFiles(t, dir, map[string]string{
		"mesh.cue":          "mesh: 1\n",
		"v1/reviews.cue":    "reviews: 1\n",
		"v2/reviews.cue":    "reviews: 2\n",
		"services/link.cue": "->../v1/reviews.cue",
	})
	src := newDir(t, dir, DirOptions{PollInterval: time.Hour})
	ctx := testCtx(t)
	events := src.Watch(ctx)
	if n := src.notifier(); n == nil {
		t.Skip("inotify is unavailable here; TestDirSourceWatch/poll covers the fallback")
	} else {
		n.close()
	}
	prev, err := src.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	step := func(what string, edit func(), check func(fs.FS) error) {
		t.Helper()
		start := time.Now()
		edit()
		select {
		case <-events:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no signal (the poll is an hour away, so inotify missed it)", what)
		}
		t.Logf("%s: seen after %v", what, time.Since(start))
		rev, err := src.Latest(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if rev.ID == prev.ID {
			t.Fatalf("%s: revision unchanged", what)
		}
		if err := check(rev.Files); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		prev = rev
	}
	step("edit a file", func() {
		gittest.WriteFiles(t, dir, map[string]string{"mesh.cue": "mesh: 2\n"})
	}, expect("mesh.cue", "mesh: 2\n"))
	step("file in a new directory", func() {
		gittest.WriteFiles(t, dir, map[string]string{"services/new/deep/ratings.cue": "ratings: 1\n"})
	}, expect("services/new/deep/ratings.cue", "ratings: 1\n"))
	step("edit in the new directory", func() {
		gittest.WriteFiles(t, dir, map[string]string{"services/new/deep/ratings.cue": "ratings: 2\n"})
	}, expect("services/new/deep/ratings.cue", "ratings: 2\n"))
	step("symlink swapped by rename", func() {
		tmp := filepath.Join(dir, "services", ".link.tmp")
		if err := os.Symlink("../v2/reviews.cue", tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "services", "link.cue")); err != nil {
			t.Fatal(err)
		}
	}, expect("services/link.cue", "reviews: 2\n"))
	step("atomic save (write a temporary file, rename it over)", func() {
		tmp := filepath.Join(dir, ".mesh.cue.swp")
		if err := os.WriteFile(tmp, []byte("mesh: 3\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "mesh.cue")); err != nil {
			t.Fatal(err)
		}
	}, expect("mesh.cue", "mesh: 3\n"))
}

// BenchmarkFingerprint measures one Watch poll over a thousand files.
func BenchmarkFingerprint(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < 1000; i++ {
		p := filepath.Join(dir, "services", fmt.Sprintf("s%03d", i/100), fmt.Sprintf("svc%04d.cue", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat("x", 500)), 0o644)
	}
	src, err := NewDir(DirOptions{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := src.fingerprint(); err != nil {
			b.Fatal(err)
		}
	}
}
