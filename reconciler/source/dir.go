package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DirOptions configure a DirSource.
type DirOptions struct {
	// Dir is the mesh repository on local disk (no Git needed).
	Dir string
	// Include picks the files that make up a revision, by slash-separated
	// path relative to Dir. Nil means DefaultInclude. Hidden files and
	// directories (".git", ".#editor-lock") are always skipped, as the
	// loader skips them.
	Include func(rel string) bool
	// MaxFileSize: a bigger file is listed with its size but not copied
	// (reading it fails with ErrTooLarge, so the loader reports GM0004).
	// DefaultMaxRead when zero.
	MaxFileSize int64
	// MaxTotalSize bounds the bytes one snapshot copies; 256 MiB when zero.
	MaxTotalSize int64
	// PollInterval is how often Watch looks for changes when inotify is
	// unavailable (and, 20 times slower, as a safety net when it is);
	// 500ms when zero.
	PollInterval time.Duration
	// Debounce is how long the tree must stay quiet before Watch signals;
	// 10ms when zero. It only has to cover the events of one save, which a
	// process issues back to back: measured with inotify on a busy 2-core
	// machine, vim's save (3 events, 12 with backup files), `sed -i`
	// (temporary file and rename, 5 events) and a `git checkout` of ten
	// files (30 events) each spanned 10-100µs, at most 0.8ms. A longer
	// burst keeps extending the wait, up to 20 periods. With inotify the
	// pickup is then ~11ms from the write (TestDirSourceWatchInotify logs
	// it; meshbench reports it as change_watch_ms), where the poll took up
	// to 500ms plus a 100ms debounce.
	Debounce time.Duration
	// Poll makes Watch poll even where inotify works: for network and
	// FUSE file systems, whose remote changes raise no local events.
	Poll bool
	// Logger receives the one warning a watch gives when it has to poll;
	// nil means slog.Default().
	Logger *slog.Logger
}

// DefaultInclude keeps the file kinds a mesh is written in, so editing a
// README or dropping a binary next to the mesh neither changes the
// revision nor costs memory.
func DefaultInclude(rel string) bool {
	switch path.Ext(rel) {
	case ".cue", ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// snapshotRetries is how often Latest re-reads a tree that changed while
// it was being copied before it gives up with a transient error.
const snapshotRetries = 5

// errChanged means a file changed while the snapshot read it.
var errChanged = errors.New("directory changed while it was read")

// DirSource serves a plain directory. Each revision is a copy in memory,
// so a half-written edit cannot be read twice differently, and its ID is
// a hash of the content, so unchanged files give the same ID again.
type DirSource struct {
	opts DirOptions
	root string

	mu     sync.Mutex
	lastFP string // stat fingerprint taken before the last snapshot
	last   Revision
}

var _ Source = (*DirSource)(nil)

// NewDir checks that dir is a directory and returns a source for it.
func NewDir(opts DirOptions) (*DirSource, error) {
	if opts.Include == nil {
		opts.Include = DefaultInclude
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxRead
	}
	if opts.MaxTotalSize <= 0 {
		opts.MaxTotalSize = 256 << 20
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 10 * time.Millisecond
	}
	abs, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, permanent(ErrConfig, fmt.Sprintf("mesh directory %q: %v", opts.Dir, err))
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return nil, permanent(ErrConfig, fmt.Sprintf("mesh directory %q is not a directory", opts.Dir))
	}
	return &DirSource{opts: opts, root: abs}, nil
}

func (d *DirSource) log() *slog.Logger {
	if d.opts.Logger != nil {
		return d.opts.Logger
	}
	return slog.Default()
}

// String is the directory's absolute path.
func (d *DirSource) String() string { return d.root }

// Latest implements Source. When no file's size, time or mode changed
// since the last snapshot it returns that snapshot without reading.
func (d *DirSource) Latest(ctx context.Context) (Revision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	op := "read directory " + d.root
	for attempt := 0; ; attempt++ {
		fp, err := d.fingerprint()
		if err != nil {
			return Revision{}, classify(op, err, nil)
		}
		if fp == d.lastFP && d.last.ID != "" {
			return d.last, nil
		}
		rev, err := d.snapshot()
		if errors.Is(err, errChanged) && attempt < snapshotRetries {
			select {
			case <-ctx.Done():
				return Revision{}, classify(op, ctx.Err(), nil)
			case <-time.After(d.opts.Debounce):
			}
			continue
		}
		if err != nil {
			return Revision{}, classify(op, err, nil)
		}
		d.lastFP, d.last = fp, rev
		return rev, nil
	}
}

// walk visits the included, non-hidden entries under the root (files,
// symlinks and other non-directories) and every non-hidden directory,
// passing slash-separated relative paths. Symlinks are never followed.
func (d *DirSource) walk(fn func(rel string, de fs.DirEntry) error) error {
	return filepath.WalkDir(d.root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == d.root {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(de.Name(), ".") {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !de.IsDir() && !d.opts.Include(rel) {
			return nil
		}
		return fn(rel, de)
	})
}

// fingerprint summarises names, types, sizes, times and link targets: the
// cheap stat-only view Watch polls and Latest uses to skip re-reading.
func (d *DirSource) fingerprint() (string, error) {
	h := sha256.New()
	var buf []byte
	err := d.walk(func(rel string, de fs.DirEntry) error {
		if de.IsDir() {
			return nil
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while listed: the next poll sees it
		}
		if err != nil {
			return err
		}
		target := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ = os.Readlink(filepath.Join(d.root, filepath.FromSlash(rel)))
		}
		buf = append(buf[:0], rel...)
		buf = append(buf, 0)
		buf = strconv.AppendUint(buf, uint64(fi.Mode()), 16)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, fi.Size(), 10)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, fi.ModTime().UnixNano(), 10)
		buf = append(buf, 0)
		buf = append(buf, target...)
		buf = append(buf, 0)
		h.Write(buf)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("scan: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
