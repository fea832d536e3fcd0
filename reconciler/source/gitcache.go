package source

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// ErrFetchTooLarge is the reason of a fetch that received more than the
// bound: the repository (its tip tree, compressed) is bigger than
// --max-repo-size. It matches ErrPermanent: retrying fetches the same bytes.
var ErrFetchTooLarge = errors.New("fetch too large")

// DefaultMaxFetchSize bounds a fetch when GitOptions.MaxFetchSize is zero;
// it is the default of --max-repo-size.
const DefaultMaxFetchSize = 64 << 20

// Compaction bounds: after a fetch, the cache is compacted when its
// object store holds more than compactPacks packs or more bytes than the
// fetch bound. A depth-1 fetch of a tree the cache already has is small,
// so most fetches add one small pack; compacting on every fetch would
// re-encode the whole tip tree each time for nothing.
const compactPacks = 4

// boundedStorage is the cache's object store with the fetch bound: go-git
// writes a fetched packfile through PackfileWriter for every transport
// (file, git://, ssh, http), so counting there bounds all of them without
// touching go-git's global transport registry. The pack is spooled to a
// temporary file first and handed to go-git's own pack writer only when it
// is complete (its SHA-1 trailer checks) and within the bound: an aborted
// fetch leaves no partial pack, index or file descriptor behind.
type boundedStorage struct {
	*filesystem.Storage
	limit int64 // bytes one fetch may receive; set by fetch
	over  bool  // the last fetch was cut at limit
	// drain reads the rest of a pack over the bound and discards it
	// instead of failing the write. go-git's file transport waits for its
	// git-upload-pack child on close, and the child blocks writing the
	// rest of the pack: aborting there would hang. It is local disk, not
	// network, and nothing is stored; the fetch still fails on Close.
	drain bool
}

func newBoundedStorage(fs billy.Filesystem) *boundedStorage {
	return &boundedStorage{Storage: filesystem.NewStorage(fs, cache.NewObjectLRUDefault())}
}

// PackfileWriter implements storer.PackfileWriter.
func (s *boundedStorage) PackfileWriter() (io.WriteCloser, error) {
	fs := s.Filesystem()
	dir := fs.Join("objects", "pack")
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := fs.TempFile(dir, "tmp_fetch_")
	if err != nil {
		return nil, err
	}
	return &spoolWriter{s: s, f: f}, nil
}

// spoolWriter counts a fetched pack into a temporary file.
type spoolWriter struct {
	s      *boundedStorage
	f      billy.File
	n      int64
	failed bool
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if w.s.over || (w.s.limit > 0 && w.n+int64(len(p)) > w.s.limit) {
		w.s.over, w.failed = true, true
		if w.s.drain {
			return len(p), nil
		}
		return 0, tooLarge(w.s.limit)
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err != nil {
		w.failed = true
	}
	return n, err
}

// Close imports a complete pack into the object store and removes the
// spool file in every case.
func (w *spoolWriter) Close() error {
	fs := w.s.Filesystem()
	name := w.f.Name()
	defer fs.Remove(name)
	if w.s.over {
		w.f.Close()
		return tooLarge(w.s.limit)
	}
	if w.failed || w.n == 0 {
		return w.f.Close()
	}
	if err := packComplete(w.f, w.n); err != nil {
		w.f.Close()
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		w.f.Close()
		return err
	}
	pw, err := w.s.Storage.PackfileWriter()
	if err != nil {
		w.f.Close()
		return err
	}
	_, err = io.Copy(pw, w.f)
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// packComplete checks a packfile's trailer: the SHA-1 of everything before
// it. A transfer cut short by the network fails here, before go-git parses
// half a pack.
func packComplete(f billy.File, n int64) error {
	if n < 32 { // header 12 + trailer 20
		return errors.New("incomplete packfile")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha1.New()
	if _, err := io.CopyN(h, f, n-sha1.Size); err != nil {
		return err
	}
	trailer := make([]byte, sha1.Size)
	if _, err := io.ReadFull(f, trailer); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), trailer) {
		return errors.New("incomplete packfile")
	}
	return nil
}

func tooLarge(limit int64) error {
	return permanent(ErrFetchTooLarge, fmt.Sprintf("the fetch exceeded %s; raise --max-repo-size or shrink the repository", formatBytes(limit)))
}

// formatBytes prints n in the largest binary unit that divides it, as the
// flags are usually given ("64 MiB"), else in bytes.
func formatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// objectStoreSize is the bytes under objects/ and the number of packs.
func objectStoreSize(fs billy.Filesystem) (size int64, packs int, err error) {
	var walk func(dir string) error
	walk = func(dir string) error {
		list, err := fs.ReadDir(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, fi := range list {
			p := fs.Join(dir, fi.Name())
			if fi.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			size += fi.Size()
			if strings.HasSuffix(fi.Name(), ".pack") {
				packs++
			}
		}
		return nil
	}
	err = walk("objects")
	return size, packs, err
}

// compact rewrites the object store as one pack holding the objects of
// the commits in keep (commit, tree and blobs; no parents, which a depth-1
// clone does not have) and deletes every other pack and loose object.
//
// go-git's Repository.RepackObjects and Prune do not fit: both walk every
// parent of every ref, and a shallow clone's parents are missing, so they
// fail; Prune also only sees loose objects while fetches write packs.
// Re-cloning into a fresh directory would fetch the whole tree again over
// the network; this is local and costs one read of the kept trees. The
// pack is written without delta search (window 0): the tip tree of a mesh
// repository has little to delta against, and a delta window over large
// blobs costs more CPU than the bytes it saves.
//
// The first of keep (the tip) must be complete; a later one that is not
// is skipped.
//
// The caller reindexes the storage afterwards: go-git caches pack indexes.
func compact(s *filesystem.Storage, keep []plumbing.Hash) error {
	var (
		seen    = map[plumbing.Hash]bool{}
		order   []plumbing.Hash
		commits []plumbing.Hash
	)
	for i, h := range keep {
		if h.IsZero() || seen[h] {
			continue
		}
		objs, err := reachable(s, h, seen)
		if err != nil {
			if i == 0 {
				return err
			}
			// An older revision this cache no longer has whole: the tip
			// is what must survive.
			continue
		}
		for _, o := range objs {
			seen[o] = true
		}
		order = append(order, objs...)
		commits = append(commits, h)
	}
	old, err := s.ObjectPacks()
	if err != nil {
		return err
	}
	pw, err := s.PackfileWriter()
	if err != nil {
		return err
	}
	h, err := packfile.NewEncoder(pw, s, false).Encode(order, 0)
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write pack: %w", err)
	}
	for _, p := range old {
		if p != h {
			if err := s.DeleteOldObjectPackAndIndex(p, time.Time{}); err != nil {
				return err
			}
		}
	}
	var loose []plumbing.Hash
	if err := s.ForEachObjectHash(func(h plumbing.Hash) error {
		loose = append(loose, h)
		return nil
	}); err != nil {
		return err
	}
	for _, h := range loose {
		if err := s.DeleteLooseObject(h); err != nil {
			return err
		}
	}
	// Only the kept commits are shallow now; stale temporary files (a
	// crash mid-fetch) go too.
	if err := s.SetShallow(commits); err != nil {
		return err
	}
	fs := s.Filesystem()
	dir := fs.Join("objects", "pack")
	list, _ := fs.ReadDir(dir)
	for _, fi := range list {
		if strings.HasPrefix(fi.Name(), "tmp_") {
			fs.Remove(path.Join(dir, fi.Name()))
		}
	}
	return nil
}

// reachable lists commit h, its tree and everything under it that is not
// in seen: no parents, no submodule commits.
func reachable(s *filesystem.Storage, h plumbing.Hash, seen map[plumbing.Hash]bool) ([]plumbing.Hash, error) {
	c, err := object.GetCommit(s, h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	mine := map[plumbing.Hash]bool{}
	out := []plumbing.Hash{h}
	add := func(h plumbing.Hash) bool {
		if seen[h] || mine[h] {
			return false
		}
		mine[h] = true
		out = append(out, h)
		return true
	}
	var walk func(h plumbing.Hash) error
	walk = func(h plumbing.Hash) error {
		if !add(h) {
			return nil
		}
		t, err := object.GetTree(s, h)
		if err != nil {
			return fmt.Errorf("read tree %s: %w", h, err)
		}
		for _, e := range t.Entries {
			switch e.Mode {
			case filemode.Submodule: // a commit of another repository
			case filemode.Dir:
				if err := walk(e.Hash); err != nil {
					return err
				}
			default:
				if add(e.Hash) {
					if err := s.HasEncodedObject(e.Hash); err != nil {
						return fmt.Errorf("read blob %s: %w", e.Hash, err)
					}
				}
			}
		}
		return nil
	}
	if err := walk(c.TreeHash); err != nil {
		return nil, err
	}
	return out, nil
}
