package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// DefaultMaxRead bounds how much of one file a source reads into memory.
// It is far above the loader's own per-file limit, so a bigger file is
// still listed with its real size and refused by the loader with GM0004,
// while a hostile multi-gigabyte blob is never read.
const DefaultMaxRead = 16 << 20

// ErrPathNotFound means the configured --path does not exist (or is not a
// directory) in the revision. It is permanent: only a new commit fixes it.
var ErrPathNotFound = errors.New("path not found in revision")

// TreeFS returns the files of revision rev (anything `git rev-parse`
// understands that go-git resolves: a SHA, a branch, "origin/main", "HEAD~1")
// below subdir, read straight from repo's object store without a checkout.
// It exists so `gitmesh check --base REV` reads the base revision exactly
// as the server reads a fetched one.
//
// Symlinks (mode 120000) are reported as symlinks by Lstat/ReadDir and
// their target by ReadLink; Open follows them only inside the tree. The
// result is not safe to use while another goroutine writes to repo (for
// example fetches into it); GitSource serialises that itself.
func TreeFS(repo *git.Repository, rev string, subdir string) (fs.FS, error) {
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	c, err := repo.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return commitFS(repo.Storer, c, subdir, &sync.Mutex{})
}

// commitFS is TreeFS for a known commit with a caller-provided lock, so a
// source can keep readers and its own fetches apart. The caller holds mu.
func commitFS(s storer.EncodedObjectStorer, c *object.Commit, subdir string, mu sync.Locker) (*roFS, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	b := &treeBackend{s: s, trees: map[plumbing.Hash][]entry{}}
	b.rootEntry = entry{name: ".", mode: fs.ModeDir | 0o555, ref: tree.Hash}
	f := &roFS{b: b, mu: mu, maxRead: DefaultMaxRead, modTime: c.Committer.When.UTC()}
	sub := strings.Trim(path.Clean("/"+subdir), "/")
	if sub == "" {
		return f, nil
	}
	// The subdir is resolved without following symlinks: a --path that is
	// a link could point anywhere and is almost certainly a mistake.
	e, err := f.resolve("open", sub, false)
	if err != nil || !e.mode.IsDir() {
		return nil, permanent(ErrPathNotFound, fmt.Sprintf("path %q is not a directory in revision %s", sub, c.Hash))
	}
	b.rootEntry = entry{name: ".", mode: fs.ModeDir | 0o555, ref: e.ref}
	return f, nil
}

// treeBackend reads Git tree and blob objects. Decoded trees are cached per
// hash because a walk resolves every path from the root.
type treeBackend struct {
	s         storer.EncodedObjectStorer
	rootEntry entry
	trees     map[plumbing.Hash][]entry
}

func (b *treeBackend) root() entry { return b.rootEntry }

func (b *treeBackend) readDir(dir entry) ([]entry, error) {
	h := dir.ref.(plumbing.Hash)
	if list, ok := b.trees[h]; ok {
		return list, nil
	}
	t, err := object.GetTree(b.s, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	list := make([]entry, 0, len(t.Entries))
	for _, te := range t.Entries {
		list = append(list, entry{name: te.Name, mode: gitMode(te.Mode), ref: te.Hash})
	}
	// Git sorts directories as if they ended in "/"; fs wants plain names.
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	b.trees[h] = list
	return list, nil
}

func (b *treeBackend) size(e entry) (int64, error) {
	if e.mode.IsDir() || e.mode&fs.ModeIrregular != 0 {
		return 0, nil
	}
	h := e.ref.(plumbing.Hash)
	n, err := b.s.EncodedObjectSize(h)
	if err != nil {
		return 0, fmt.Errorf("size of blob %s: %w", h, err)
	}
	return n, nil
}

func (b *treeBackend) content(e entry) ([]byte, error) {
	h := e.ref.(plumbing.Hash)
	blob, err := object.GetBlob(b.s, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, DefaultMaxRead+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	if len(data) > DefaultMaxRead {
		return nil, ErrTooLarge
	}
	return data, nil
}

// gitMode maps Git's few file modes onto fs modes. Submodules (gitlinks)
// have no content here and become irregular entries the loader refuses.
func gitMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Dir:
		return fs.ModeDir | 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Executable:
		return 0o555
	case filemode.Regular, filemode.Deprecated:
		return 0o444
	default:
		return fs.ModeIrregular
	}
}
