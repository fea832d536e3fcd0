package source

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// memNode is one entry of an in-memory snapshot. It is never modified
// after the snapshot is built, so readers need no lock.
type memNode struct {
	mode     fs.FileMode
	data     []byte // file content; nil when too large
	size     int64
	tooLarge bool
	target   string  // symlink target
	children []entry // sorted by name, for directories
}

// memBackend serves a snapshot to roFS.
type memBackend struct{ rootNode *memNode }

func (b *memBackend) root() entry {
	return entry{name: ".", mode: b.rootNode.mode, ref: b.rootNode}
}

func (b *memBackend) readDir(dir entry) ([]entry, error) {
	return dir.ref.(*memNode).children, nil
}

func (b *memBackend) size(e entry) (int64, error) {
	n := e.ref.(*memNode)
	if n.mode&fs.ModeSymlink != 0 {
		return int64(len(n.target)), nil
	}
	return n.size, nil
}

func (b *memBackend) content(e entry) ([]byte, error) {
	n := e.ref.(*memNode)
	switch {
	case n.mode&fs.ModeSymlink != 0:
		return []byte(n.target), nil
	case n.tooLarge:
		return nil, ErrTooLarge
	}
	return n.data, nil
}

// noLock is the Locker for immutable snapshots: readers run concurrently.
type noLock struct{}

func (noLock) Lock()   {}
func (noLock) Unlock() {}

// snapshot copies the included files into memory and hashes them. The ID
// covers, in path order, each file's path, type, executable bit and
// content (or a symlink's target), so it changes exactly when what the
// loader could read changes.
func (d *DirSource) snapshot() (Revision, error) {
	root := &memNode{mode: fs.ModeDir | 0o555}
	dirs := map[string]*memNode{".": root}
	type item struct {
		rel  string
		node *memNode
		sum  []byte // content hash of a file too large to copy
	}
	var (
		items []item
		total int64
	)
	err := d.walk(func(rel string, de fs.DirEntry) error {
		parent := dirs[path.Dir(rel)]
		if parent == nil {
			return nil // under a directory that vanished mid-walk
		}
		name := path.Base(rel)
		if de.IsDir() {
			n := &memNode{mode: fs.ModeDir | 0o555}
			dirs[rel] = n
			parent.children = append(parent.children, entry{name: name, mode: n.mode, ref: n})
			return nil
		}
		full := filepath.Join(d.root, filepath.FromSlash(rel))
		n, sum, err := d.readNode(full, de)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if total += int64(len(n.data)); total > d.opts.MaxTotalSize {
			return permanent(ErrConfig, fmt.Sprintf("more than %d bytes of mesh files", d.opts.MaxTotalSize))
		}
		parent.children = append(parent.children, entry{name: name, mode: n.mode, ref: n})
		items = append(items, item{rel: rel, node: n, sum: sum})
		return nil
	})
	if err != nil {
		return Revision{}, err
	}
	for _, n := range dirs {
		sort.Slice(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
	}
	sort.Slice(items, func(i, j int) bool { return items[i].rel < items[j].rel })
	h := sha256.New()
	for _, it := range items {
		writeField(h, []byte(it.rel))
		n := it.node
		kind := "f"
		switch {
		case n.mode&fs.ModeSymlink != 0:
			kind = "l"
		case !n.mode.IsRegular():
			kind = "o"
		case n.mode&0o111 != 0:
			kind = "x"
		}
		writeField(h, []byte(kind))
		switch {
		case kind == "l":
			writeField(h, []byte(n.target))
		case n.tooLarge:
			writeField(h, it.sum)
		default:
			writeField(h, n.data)
		}
	}
	id := "dir:" + hex.EncodeToString(h.Sum(nil))
	files := &roFS{b: &memBackend{rootNode: root}, mu: noLock{}, maxRead: d.opts.MaxFileSize}
	return Revision{ID: id, Short: ShortID(id), Files: files}, nil
}

// writeField writes a length-prefixed field, so no two different trees
// can hash the same by shifting bytes between path and content.
func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// readNode copies one non-directory entry. Symlinks keep their target and
// are not followed; FIFOs, sockets and devices are recorded as irregular
// without being opened (opening a FIFO would block). A file that changes
// between stat and read fails with errChanged so the snapshot is retried.
func (d *DirSource) readNode(full string, de fs.DirEntry) (*memNode, []byte, error) {
	fi, err := de.Info()
	if err != nil {
		return nil, nil, errChanged
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(full)
		if err != nil {
			return nil, nil, errChanged
		}
		return &memNode{mode: fs.ModeSymlink | 0o777, target: filepath.ToSlash(target)}, nil, nil
	case !fi.Mode().IsRegular():
		return &memNode{mode: fs.ModeIrregular}, nil, nil
	}
	mode := fs.FileMode(0o444)
	if fi.Mode()&0o111 != 0 {
		mode = 0o555
	}
	f, err := os.Open(full)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil, errChanged
		}
		return nil, nil, err
	}
	defer f.Close()
	n := &memNode{mode: mode, size: fi.Size()}
	var sum []byte
	if fi.Size() > d.opts.MaxFileSize {
		// Hash without copying, so the ID still follows the content.
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return nil, nil, fmt.Errorf("read: %w", err)
		}
		n.tooLarge, sum = true, h.Sum(nil)
	} else {
		n.data, err = io.ReadAll(io.LimitReader(f, d.opts.MaxFileSize+1))
		if err != nil {
			return nil, nil, fmt.Errorf("read: %w", err)
		}
	}
	after, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat: %w", err)
	}
	if after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) ||
		(!n.tooLarge && int64(len(n.data)) != fi.Size()) {
		return nil, nil, errChanged
	}
	return n, sum, nil
}
