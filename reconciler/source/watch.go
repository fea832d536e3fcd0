package source

import (
	"context"
	"time"
)

// Watch signals on the returned channel when the directory's included
// files change, until ctx ends (then the channel is closed). Signals are
// coalesced (the channel holds at most one) and debounced: a change is
// reported once the tree has stayed the same for Debounce, or after 20
// debounce periods of continuous writing, so an editor's save or a `git
// checkout` of many files yields one signal. Start Watch before the first
// Latest so no change falls between them.
//
// It polls a stat-only fingerprint every PollInterval instead of using
// inotify (fsnotify): polling needs no new dependency, is recursive for
// free (inotify needs a watch per directory and races with new ones),
// works on network and overlay file systems and sees Kubernetes
// ConfigMap-style symlink swaps. A poll lstats each included file:
// BenchmarkFingerprint measured 7-13ms per thousand files on a busy
// 2-core machine, 1-3% of one core at 500ms; raise PollInterval for
// very large trees.
func (d *DirSource) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	prev, _ := d.fingerprint()
	go func() {
		defer close(ch)
		tick := time.NewTicker(d.opts.PollInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			cur, _ := d.fingerprint()
			if cur == prev {
				continue
			}
			for i := 0; i < 20; i++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d.opts.Debounce):
				}
				next, _ := d.fingerprint()
				if next == cur {
					break
				}
				cur = next
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
