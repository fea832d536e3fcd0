package statusgit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// readFile returns the file at p in commit tip; ok is false when the tip is
// zero (no branch) or the tree has no regular file there.
func readFile(s storer.EncodedObjectStorer, tip plumbing.Hash, p string) (b []byte, ok bool, err error) {
	if tip.IsZero() {
		return nil, false, nil
	}
	c, err := object.GetCommit(s, tip)
	if err != nil {
		return nil, false, fmt.Errorf("read commit %s: %w", tip, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, false, fmt.Errorf("read tree of %s: %w", tip, err)
	}
	f, err := tree.File(p)
	if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) ||
		errors.Is(err, object.ErrEntryNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %w", p, tip, err)
	}
	r, err := f.Reader()
	if err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %w", p, tip, err)
	}
	defer r.Close()
	b, err = io.ReadAll(r)
	if err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %w", p, tip, err)
	}
	return b, true, nil
}

// commit stores a commit whose parent is tip (none when zero) and whose
// tree is tip's tree with only c.Path replaced, and returns its hash.
func (w *Writer) commit(tip plumbing.Hash, c Change) (plumbing.Hash, error) {
	s := w.repo.Storer
	blob, err := putBlob(s, c.Content)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var root plumbing.Hash
	var parents []plumbing.Hash
	if !tip.IsZero() {
		pc, err := object.GetCommit(s, tip)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read commit %s: %w", tip, err)
		}
		root, parents = pc.TreeHash, []plumbing.Hash{tip}
	}
	tree, err := putFile(s, root, strings.Split(c.Path, "/"), blob)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("build tree: %w", err)
	}
	now := w.o.Now()
	msg := c.Message
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n" // as the git CLI stores it
	}
	commit := &object.Commit{
		Author:       object.Signature{Name: w.o.Author.Name, Email: w.o.Author.Email, When: now},
		Committer:    object.Signature{Name: w.o.Committer.Name, Email: w.o.Committer.Email, When: now},
		Message:      msg,
		TreeHash:     tree,
		ParentHashes: parents,
	}
	if w.key != nil {
		if commit.PGPSignature, err = sign(w.key, commit, now); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	obj := s.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
	}
	return s.SetEncodedObject(obj)
}

func putBlob(s storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	wr, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := io.Copy(wr, bytes.NewReader(content)); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := wr.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

// putFile stores the tree root (zero: empty) with the file at parts set to
// blob, creating directories on the way, and returns the new tree's hash.
// Every other entry keeps its hash and mode, so files we do not own (a
// human's notes, the mesh config on a shared branch) pass through intact.
func putFile(s storer.EncodedObjectStorer, root plumbing.Hash, parts []string, blob plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !root.IsZero() {
		t, err := object.GetTree(s, root)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", root, err)
		}
		entries = append(entries, t.Entries...)
	}
	name := parts[0]
	i := 0
	for i < len(entries) && entries[i].Name != name {
		i++
	}
	found := i < len(entries)
	entry := object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob}
	if len(parts) == 1 {
		if found {
			switch entries[i].Mode {
			case filemode.Regular, filemode.Deprecated:
			case filemode.Executable:
				entry.Mode = filemode.Executable
			default: // a directory, symlink or submodule is not ours to replace
				return plumbing.ZeroHash, fmt.Errorf("%q is not a regular file", name)
			}
		}
	} else {
		var sub plumbing.Hash
		if found {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%q is not a directory", name)
			}
			sub = entries[i].Hash
		}
		h, err := putFile(s, sub, parts[1:], blob)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entry = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	if found {
		entries[i] = entry
	} else {
		entries = append(entries, entry)
	}
	// Git orders entries as if directory names ended in "/".
	sort.Sort(object.TreeEntrySorter(entries))
	t := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tree: %w", err)
	}
	return s.SetEncodedObject(obj)
}
