package source

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randomString(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirSize is what the cache takes on disk, every file counted.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return n
}

// TestGitSourceFetchBound pushes an 8 MiB random blob next to the mesh and
// fetches with a 4 MiB bound over each transport: the fetch is refused with
// a permanent error that says what to do, nothing of it stays in the cache,
// the same tip is not fetched again, and the next commit without the blob
// fetches normally.
func TestGitSourceFetchBound(t *testing.T) {
	const limit = 4 << 20
	for _, tc := range []struct {
		name string
		url  func(r *testRepo) string
	}{
		{"file", func(r *testRepo) string { return "file://" + r.bare }},
		{"git daemon", func(r *testRepo) string { return r.serveDaemon(t) }},
		{"smart http", func(r *testRepo) string { return r.serveHTTP(t, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRepo(t, map[string]string{"mesh.cue": "a: 1\n"})
			url := tc.url(r)
			cache := t.TempDir()
			src, err := NewGit(GitOptions{URL: url, CacheDir: cache, MaxFetchSize: limit})
			if err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			good, err := src.Latest(ctx)
			if err != nil {
				t.Fatalf("small repository: %v", err)
			}
			before := dirSize(t, cache)

			r.commit(t, "big", map[string]string{"assets/big.bin": randomString(t, 8<<20)})
			_, err = src.Latest(ctx)
			if err == nil {
				t.Fatal("8 MiB blob fetched under a 4 MiB bound")
			}
			if !Permanent(err) || !errors.Is(err, ErrFetchTooLarge) {
				t.Fatalf("error %v: want a permanent ErrFetchTooLarge", err)
			}
			want := fmt.Sprintf("fetch %s@main: the fetch exceeded 4 MiB; raise --max-repo-size or shrink the repository", url)
			if err.Error() != want {
				t.Fatalf("error\n got %q\nwant %q", err, want)
			}
			if after := dirSize(t, cache); after > before+64<<10 {
				t.Fatalf("refused fetch left %d bytes in the cache (was %d)", after, before)
			}
			if sh, err := src.store.Shallow(); err != nil || len(sh) != 1 || sh[0].String() != good.ID {
				t.Fatalf("shallow list after the refusal: %v %v, want only %s", sh, err, good.ID)
			}
			fetches := src.Stats().Fetches
			if _, err := src.Latest(ctx); !errors.Is(err, ErrFetchTooLarge) {
				t.Fatalf("second Latest: %v", err)
			}
			if got := src.Stats().Fetches; got != fetches {
				t.Fatalf("the refused tip was fetched again (%d fetches, was %d)", got, fetches)
			}
			if got := readString(t, good.Files, "mesh.cue"); got != "a: 1\n" {
				t.Fatalf("last good revision reads %q", got)
			}

			r.git(t, r.work, "rm", "-q", "assets/big.bin")
			next := r.commit(t, "drop big", map[string]string{"mesh.cue": "a: 2\n"})
			rev, err := src.Latest(ctx)
			if err != nil || rev.ID != next {
				t.Fatalf("after dropping the blob: %v %q, want %q", err, rev.ID, next)
			}
			if got := readString(t, rev.Files, "mesh.cue"); got != "a: 2\n" {
				t.Fatalf("content %q", got)
			}
		})
	}
}

// TestGitSourceCacheCompacted commits a fresh 1 MiB random blob twelve
// times (12 MiB of history) and checks that the cache stays near the
// bound, on disk and in memory, while the newest and the previous
// revision stay readable.
func TestGitSourceCacheCompacted(t *testing.T) {
	const limit = 4 << 20
	for _, onDisk := range []bool{true, false} {
		t.Run(fmt.Sprintf("disk=%v", onDisk), func(t *testing.T) {
			r := newTestRepo(t, map[string]string{"mesh.cue": "a: 0\n"})
			cache := ""
			if onDisk {
				cache = t.TempDir()
			}
			src, err := NewGit(GitOptions{URL: r.serveDaemon(t), CacheDir: cache, MaxFetchSize: limit})
			if err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			var prev Revision
			var largest int64
			for i := 1; i <= 12; i++ {
				next := r.commit(t, fmt.Sprint(i), map[string]string{
					"mesh.cue": fmt.Sprintf("a: %d\n", i),
					"junk.bin": randomString(t, 1<<20),
				})
				rev, err := src.Latest(ctx)
				if err != nil || rev.ID != next {
					t.Fatalf("commit %d: %v %q", i, err, rev.ID)
				}
				var size int64
				if onDisk {
					size = dirSize(t, cache)
				} else {
					size, _, err = objectStoreSize(src.store.Filesystem())
					if err != nil {
						t.Fatal(err)
					}
				}
				largest = max(largest, size)
				if got := readString(t, rev.Files, "mesh.cue"); got != fmt.Sprintf("a: %d\n", i) {
					t.Fatalf("commit %d reads %q", i, got)
				}
				if b, err := fs.ReadFile(rev.Files, "junk.bin"); err != nil || len(b) != 1<<20 {
					t.Fatalf("commit %d: junk.bin: %v (%d bytes)", i, err, len(b))
				}
				if prev.ID != "" {
					if got := readString(t, prev.Files, "mesh.cue"); got != fmt.Sprintf("a: %d\n", i-1) {
						t.Fatalf("previous revision reads %q after commit %d", got, i)
					}
				}
				prev = rev
			}
			// Never more than the bound plus the one fetch that crossed it.
			if largest > limit+(3<<19) {
				t.Fatalf("cache grew to %d bytes with a %d byte bound", largest, limit)
			}
			t.Logf("largest cache: %d bytes for 12 MiB of history", largest)
		})
	}
}

// TestFormatBytes pins the unit the refusal prints.
func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{64 << 20: "64 MiB", 1 << 30: "1 GiB", 8 << 10: "8 KiB", 1536: "1536 bytes"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	if !strings.Contains(tooLarge(64<<20).Error(), "64 MiB") {
		t.Fatal(tooLarge(64 << 20))
	}
}
