package source

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// safetyPolls is how many PollIntervals apart the fingerprint is still
// polled while inotify watches: a net of last resort for what inotify
// cannot see (a symlink's target outside the watched tree, a network or
// FUSE file system that raises no events, an event queue overflow that
// went unreported). At the 500ms default that is one poll every 10s.
const safetyPolls = 20

// maxDebounces bounds the wait for a quiet tree: after this many debounce
// periods of continuous writing the change is reported anyway, so a tree
// that is written to all the time still gets served.
const maxDebounces = 20

// Watch signals on the returned channel when the directory's included
// files change, until ctx ends (then the channel is closed). Signals are
// coalesced (the channel holds at most one) and debounced: a change is
// reported once the tree has been quiet for Debounce, or after 20 debounce
// periods of continuous writing, so an editor's save or a `git checkout`
// of many files yields one signal. Start Watch before the first Latest so
// no change falls between them.
//
// Changes are noticed with inotify (fsnotify) where the platform allows:
// every non-hidden directory of the tree is watched, and directories that
// appear later are added as their creation is seen (then the tree is
// checked again, so files written into a new directory before its watch
// existed are not missed). An event only prompts a check of the stat-only
// fingerprint, so edits to files outside Include, under hidden directories
// or that leave the content's stat unchanged signal nothing, and a
// ConfigMap-style swap (a symlink replaced by rename) is seen both as an
// event in its directory and as a new link target in the fingerprint.
//
// Where inotify is unavailable (another platform, no inotify instances
// left, the per-user watch limit reached) Watch logs that once and polls
// the fingerprint every PollInterval instead, as it always did: a poll
// lstats each included file, BenchmarkFingerprint measured 7-13ms per
// thousand files on a busy 2-core machine, 1-3% of one core at 500ms.
// While inotify works the fingerprint is still polled every 20
// PollIntervals, for what inotify cannot see (see safetyPolls).
//
// Pickup latency with inotify is the debounce (10ms by default) plus one
// fingerprint (~10ms per thousand files); with polling it was up to
// PollInterval plus the debounce (500+100ms before).
func (d *DirSource) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	prev, _ := d.fingerprint()
	n := d.notifier()
	go func() {
		defer close(ch)
		if n != nil {
			defer n.close()
		}
		interval := d.opts.PollInterval
		if n != nil {
			interval *= safetyPolls
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			var events <-chan struct{}
			if n != nil {
				events = n.changed
			}
			evented := false
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-events:
				// Let the burst (an editor's write, rename and chmod) end
				// before looking: events quiet for a whole Debounce.
				if !n.quiet(ctx, d.opts.Debounce, maxDebounces) {
					return
				}
				evented = true
			}
			cur, _ := d.fingerprint()
			if cur == prev {
				continue
			}
			if !evented && !d.settle(ctx, &cur) {
				return
			}
			prev = cur
			select {
			case ch <- struct{}{}:
			default: // one signal is already waiting
			}
		}
	}()
	return ch
}

// settle polls the fingerprint every Debounce until it stops changing (at
// most maxDebounces periods) and leaves the last one in cur. It reports
// false when ctx ended.
func (d *DirSource) settle(ctx context.Context, cur *string) bool {
	for i := 0; i < maxDebounces; i++ {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d.opts.Debounce):
		}
		next, _ := d.fingerprint()
		if next == *cur {
			return true
		}
		*cur = next
	}
	return true
}

// notifier turns inotify events under the tree into "something may have
// changed" prompts, adding watches for new directories as they appear.
type notifier struct {
	w       *fsnotify.Watcher
	d       *DirSource
	changed chan struct{} // holds at most one prompt
	done    chan struct{}
}

// notifier starts watching the tree, or returns nil (after logging why)
// when inotify cannot be used, so the caller polls.
func (d *DirSource) notifier() *notifier {
	if d.opts.Poll {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log().Warn("directory watch: inotify unavailable, polling instead", "dir", d.root, "interval", d.opts.PollInterval, "err", err)
		return nil
	}
	n := &notifier{w: w, d: d, changed: make(chan struct{}, 1), done: make(chan struct{})}
	if err := n.addTree(d.root); err != nil {
		w.Close()
		d.log().Warn("directory watch: cannot watch every directory with inotify (raise fs.inotify.max_user_watches), polling instead",
			"dir", d.root, "interval", d.opts.PollInterval, "err", err)
		return nil
	}
	go n.run()
	return n
}

// addTree watches dir and every non-hidden directory below it.
func (n *notifier) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone while listed: its parent's event covers it
			}
			return err
		}
		if !de.IsDir() {
			return nil
		}
		if p != n.d.root && strings.HasPrefix(de.Name(), ".") {
			return fs.SkipDir // the loader skips hidden directories too
		}
		if err := n.w.Add(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// run forwards events as prompts until close. A watch that cannot be
// added for a new directory (the watch limit) is logged once; the safety
// poll still covers that directory.
func (n *notifier) run() {
	warned := false
	for {
		select {
		case <-n.done:
			return
		case ev, ok := <-n.w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if err := n.addTree(ev.Name); err != nil && !warned {
					warned = true
					n.d.log().Warn("directory watch: cannot watch a new directory with inotify; its changes are seen by the slow poll only",
						"dir", ev.Name, "err", err)
				}
			}
			n.prompt()
		case err, ok := <-n.w.Errors:
			if !ok {
				return
			}
			// An overflow lost events: look at the tree to be sure.
			n.prompt()
			if !warned {
				warned = true
				n.d.log().Warn("directory watch: inotify error", "dir", n.d.root, "err", err)
			}
		}
	}
}

func (n *notifier) prompt() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// quiet waits until no event arrived for period, or at most limit
// periods in all. It reports false when ctx ended.
func (n *notifier) quiet(ctx context.Context, period time.Duration, limit int) bool {
	deadline := time.NewTimer(period * time.Duration(limit))
	defer deadline.Stop()
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-n.changed:
			t.Reset(period)
		case <-t.C:
			return true
		case <-deadline.C:
			return true
		}
	}
}

func (n *notifier) close() {
	close(n.done)
	n.w.Close()
}
