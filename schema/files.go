package schema

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// repoFile is one file of the mesh repository, read within the limits.
type repoFile struct {
	path string // relative to the repository root, slash separated
	src  []byte
}

// repoFiles are the files that make up a mesh: data files and guardrails.
type repoFiles struct {
	data       []repoFile // *.cue, *.yaml, *.yml, *.json outside policies/
	guardrails []repoFile // policies/**/*.cue
}

// skippedDirs are never part of the mesh: fixtures, status written back by
// gitmesh itself, and CUE's module directory.
var skippedDirs = map[string]bool{"testdata": true, "status": true, "cue.mod": true}

// dataExt lists the file kinds a mesh is written in.
var dataExt = map[string]bool{".cue": true, ".yaml": true, ".yml": true, ".json": true}

// collect walks fsys and reads every mesh file, enforcing the size limits
// and refusing unsafe symlinks. Problems with the input become diagnostics;
// the error is for failures to read the file system itself.
func collect(fsys fs.FS, opts Options) (repoFiles, model.Diagnostics, error) {
	var (
		out   repoFiles
		diags model.Diagnostics
		total int64
		full  bool
	)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if p == "." {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") || ignored(p, opts.Ignore) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if skippedDirs[name] {
				return fs.SkipDir
			}
			return nil
		}
		if !dataExt[path.Ext(name)] {
			return nil
		}
		guardrail := strings.HasPrefix(p, "policies/")
		if guardrail && path.Ext(name) != ".cue" {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if diag, ok := checkSymlink(fsys, p); !ok {
				diags = append(diags, diag)
				return nil
			}
		} else if !d.Type().IsRegular() {
			diags = append(diags, fileDiag(CodeUnsafePath, p, "not a regular file"))
			return nil
		}
		if full {
			return nil
		}
		src, size, err := readLimited(fsys, p, opts.MaxFileSize)
		if err != nil {
			return err
		}
		if src == nil {
			diags = append(diags, fileDiag(CodeFileTooBig, p,
				fmt.Sprintf("file is %d bytes, limit is %d", size, opts.MaxFileSize)))
			return nil
		}
		total += size
		if total > opts.MaxTotalSize {
			full = true
			diags = append(diags, fileDiag(CodeRepoTooBig, p,
				fmt.Sprintf("repository exceeds %d bytes at this file", opts.MaxTotalSize)))
			return nil
		}
		f := repoFile{path: p, src: src}
		if guardrail {
			out.guardrails = append(out.guardrails, f)
		} else {
			out.data = append(out.data, f)
		}
		return nil
	})
	if err != nil {
		return repoFiles{}, nil, err
	}
	// WalkDir already visits in lexical order; sorting documents that the
	// order (and so "first position wins" in Sources) is deterministic.
	sort.Slice(out.data, func(i, j int) bool { return out.data[i].path < out.data[j].path })
	return out, diags, nil
}

// ignored reports whether p is under one of the ignored prefixes.
func ignored(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		pre = strings.Trim(path.Clean(pre), "/")
		if pre == "." || pre == "" {
			continue
		}
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}

// checkSymlink allows a symlink only when the file system can tell where
// it points and the target is a regular file inside the repository.
// Symlinked directories are refused outright: they make cycles and hide
// what a review sees.
func checkSymlink(fsys fs.FS, p string) (model.Diagnostic, bool) {
	rl, ok := fsys.(fs.ReadLinkFS)
	if !ok {
		return fileDiag(CodeUnsafePath, p, "symlink in a file system that cannot read links"), false
	}
	target, err := rl.ReadLink(p)
	if err != nil {
		return fileDiag(CodeUnsafePath, p, fmt.Sprintf("unreadable symlink: %v", err)), false
	}
	if path.IsAbs(target) || strings.HasPrefix(target, "/") {
		return fileDiag(CodeUnsafePath, p, fmt.Sprintf("symlink to %q leaves the repository", target)), false
	}
	resolved := path.Join(path.Dir(p), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fileDiag(CodeUnsafePath, p, fmt.Sprintf("symlink to %q leaves the repository", target)), false
	}
	// The target may itself be a link; follow at most a few hops, each
	// checked the same way.
	for hops := 0; ; hops++ {
		fi, err := rl.Lstat(resolved)
		if err != nil {
			return fileDiag(CodeUnsafePath, p, fmt.Sprintf("dangling symlink to %q", target)), false
		}
		if fi.Mode().IsRegular() {
			return model.Diagnostic{}, true
		}
		if fi.Mode()&fs.ModeSymlink == 0 || hops >= 8 {
			return fileDiag(CodeUnsafePath, p, fmt.Sprintf("symlink to %q is not a regular file", target)), false
		}
		next, err := rl.ReadLink(resolved)
		if err != nil || path.IsAbs(next) {
			return fileDiag(CodeUnsafePath, p, fmt.Sprintf("symlink to %q leaves the repository", target)), false
		}
		resolved = path.Join(path.Dir(resolved), next)
		if resolved == ".." || strings.HasPrefix(resolved, "../") {
			return fileDiag(CodeUnsafePath, p, fmt.Sprintf("symlink to %q leaves the repository", target)), false
		}
	}
}

// readLimited reads p unless it is larger than limit, in which case it
// returns a nil slice and the size seen. It stats first and then reads at
// most limit+1 bytes, so a file growing meanwhile cannot exhaust memory.
func readLimited(fsys fs.FS, p string, limit int64) ([]byte, int64, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return nil, fi.Size(), nil
	}
	src, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(src)) > limit {
		return nil, int64(len(src)), nil
	}
	return src, int64(len(src)), nil
}

// fileDiag is an error about a whole file.
func fileDiag(code, file, msg string) model.Diagnostic {
	return model.Diagnostic{Code: code, Severity: model.SeverityError, Pos: model.Pos{File: file}, Message: msg}
}
