package source

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrTooLarge is returned when reading a file bigger than the snapshot
// bound. Stat still reports the real size, so the loader can refuse the file
// with a size diagnostic (GM0004) before it ever reads it.
var ErrTooLarge = errors.New("file too large to read from the source")

// maxHops bounds how many symlinks one path resolution may follow, the same
// order as Linux's MAXSYMLINKS, so a link cycle ends in an error.
const maxHops = 40

// entry is one name in a directory of a read-only tree. ref is what the
// backend needs to find the content (a Git object hash, an in-memory node).
type entry struct {
	name string
	mode fs.FileMode
	ref  any
}

// backend is what a concrete tree (a Git commit, a directory snapshot)
// provides; roFS builds the fs.FS semantics on top, so path resolution and
// the symlink rules exist once.
type backend interface {
	root() entry
	// readDir lists a directory entry, sorted by name.
	readDir(dir entry) ([]entry, error)
	// size is the content length of a file or the target length of a link.
	size(e entry) (int64, error)
	// content returns a file's bytes or a link's target.
	content(e entry) ([]byte, error)
}

// roFS is a read-only fs.FS over a backend. It implements fs.ReadLinkFS so
// the schema loader sees symlinks as symlinks; Open, Stat and ReadDir follow
// links like os.DirFS would, but never out of the root: a link that leaves
// the tree resolves to fs.ErrNotExist instead of the host's file.
type roFS struct {
	b       backend
	mu      sync.Locker // serialises backend access; may be shared with a writer
	maxRead int64       // content bigger than this is not read (ErrTooLarge)
	modTime time.Time
}

var (
	_ fs.ReadLinkFS = (*roFS)(nil)
	_ fs.ReadDirFS  = (*roFS)(nil)
	_ fs.ReadFileFS = (*roFS)(nil)
	_ fs.StatFS     = (*roFS)(nil)
)

// resolve finds name. Symlinks in directory positions are always followed
// (inside the root); a symlink in the last position is followed only when
// follow is set, which is what separates Stat from Lstat.
func (f *roFS) resolve(op, name string, follow bool) (entry, error) {
	if !fs.ValidPath(name) {
		return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	todo := splitPath(name)
	var (
		cur   = f.b.root()
		stack []entry // directories from the root to cur, for ".."
		hops  int
	)
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case ".":
			continue
		case "..":
			if len(stack) == 0 {
				return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
			}
			cur, stack = stack[len(stack)-1], stack[:len(stack)-1]
			continue
		}
		if !cur.mode.IsDir() {
			return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		list, err := f.b.readDir(cur)
		if err != nil {
			return entry{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		next, ok := find(list, part)
		if !ok {
			return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if next.mode&fs.ModeSymlink != 0 && (len(todo) > 0 || follow) {
			hops++
			target, err := f.b.content(next)
			if err != nil {
				return entry{}, &fs.PathError{Op: op, Path: name, Err: err}
			}
			if hops > maxHops || path.IsAbs(string(target)) || len(target) == 0 {
				// Absolute targets point at the host, never into the tree.
				return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
			}
			todo = append(strings.Split(string(target), "/"), todo...)
			continue
		}
		stack = append(stack, cur)
		cur = next
	}
	return cur, nil
}

func splitPath(name string) []string {
	if name == "." {
		return nil
	}
	return strings.Split(name, "/")
}

func find(list []entry, name string) (entry, bool) {
	i := sort.Search(len(list), func(i int) bool { return list[i].name >= name })
	if i < len(list) && list[i].name == name {
		return list[i], true
	}
	return entry{}, false
}

// Open opens name for reading, following symlinks inside the tree.
func (f *roFS) Open(name string) (fs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	fi := &info{name: path.Base(name), e: e, f: f}
	if name == "." {
		fi.name = "."
	}
	if e.mode.IsDir() {
		list, err := f.b.readDir(e)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{info: fi, list: f.dirEntries(list)}, nil
	}
	if !e.mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	size, err := f.b.size(e)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	fi.sz, fi.sized = size, true
	file := &file{info: fi}
	if size > f.maxRead {
		file.err = &fs.PathError{Op: "read", Path: name, Err: ErrTooLarge}
		return file, nil
	}
	data, err := f.b.content(e)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	file.r.Reset(string(data))
	return file, nil
}

// ReadFile reads a whole file, following symlinks inside the tree.
func (f *roFS) ReadFile(name string) ([]byte, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if _, ok := file.(*dirFile); ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	return io.ReadAll(file)
}

// Stat describes name, following symlinks inside the tree.
func (f *roFS) Stat(name string) (fs.FileInfo, error) { return f.stat("stat", name, true) }

// Lstat describes name without following a final symlink.
func (f *roFS) Lstat(name string) (fs.FileInfo, error) { return f.stat("lstat", name, false) }

func (f *roFS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.resolve(op, name, follow)
	if err != nil {
		return nil, err
	}
	fi := &info{name: path.Base(name), e: e, f: f}
	if e.mode.IsDir() {
		fi.sized = true
	} else if fi.sz, err = f.b.size(e); err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	fi.sized = true
	return fi, nil
}

// ReadLink returns a symlink's target as stored, without checking it.
func (f *roFS) ReadLink(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if e.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	target, err := f.b.content(e)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(target), nil
}

// ReadDir lists a directory sorted by name; entries that are symlinks
// report ModeSymlink, as os.ReadDir does.
func (f *roFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !e.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	list, err := f.b.readDir(e)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return f.dirEntries(list), nil
}

func (f *roFS) dirEntries(list []entry) []fs.DirEntry {
	out := make([]fs.DirEntry, len(list))
	for i, e := range list {
		out[i] = &info{name: e.name, e: e, f: f}
	}
	return out
}

// info is both fs.FileInfo and fs.DirEntry. Sizes are looked up lazily
// because a directory listing should not have to touch every blob.
type info struct {
	name  string
	e     entry
	f     *roFS
	sz    int64
	sized bool
}

func (i *info) Name() string               { return i.name }
func (i *info) Mode() fs.FileMode          { return i.e.mode }
func (i *info) Type() fs.FileMode          { return i.e.mode.Type() }
func (i *info) ModTime() time.Time         { return i.f.modTime }
func (i *info) IsDir() bool                { return i.e.mode.IsDir() }
func (i *info) Sys() any                   { return nil }
func (i *info) Info() (fs.FileInfo, error) { return i, nil }
func (i *info) String() string             { return fs.FormatDirEntry(i) }

// Size is the file's length; a lookup failure reports -1 because
// fs.FileInfo has no way to return an error.
func (i *info) Size() int64 {
	if !i.sized && !i.e.mode.IsDir() {
		i.f.mu.Lock()
		sz, err := i.f.b.size(i.e)
		i.f.mu.Unlock()
		if err != nil {
			sz = -1
		}
		i.sz, i.sized = sz, true
	}
	return i.sz
}

// file is an opened regular file whose content was read at Open, so reads
// never touch the backend (and its lock) again.
type file struct {
	info *info
	r    strings.Reader
	err  error // set when the content was too large to read
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

func (f *file) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	return f.r.Read(p)
}

// dirFile is an opened directory.
type dirFile struct {
	info *info
	list []fs.DirEntry
	off  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile with the usual n semantics.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.list[d.off:]
	if n <= 0 {
		d.off = len(d.list)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return rest[:n], nil
}
