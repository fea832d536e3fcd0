package statusgit

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/gitmesh/gitmesh/reconciler/source"
)

// recloneAfter bounds how many fetches accumulate in the in-memory clone:
// go-git never prunes memory storage, so after this many the clone is
// dropped and the next fetch starts a fresh shallow one (milliseconds).
const recloneAfter = 100

// tracking is where the fetched tip is kept locally.
func (w *Writer) tracking() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", w.o.Branch)
}

// openRepo returns the in-memory clone, starting a new one when there is
// none or the old one has grown.
func (w *Writer) openRepo(ra *source.RemoteAuth) (*git.Repository, error) {
	if w.repo != nil && w.uses < recloneAfter {
		return w.repo, nil
	}
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, fmt.Errorf("init local clone: %w", err)
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{
		Name:  "origin",
		URLs:  []string{ra.URL},
		Fetch: []config.RefSpec{w.fetchSpec()},
	})
	if err != nil {
		return nil, fmt.Errorf("configure local clone: %w", err)
	}
	w.repo, w.uses = repo, 0
	return repo, nil
}

// fetchSpec follows the remote branch wherever it goes ("+"): the remote's
// history is theirs to rewrite; only our pushes must never force.
func (w *Writer) fetchSpec() config.RefSpec {
	return config.RefSpec(fmt.Sprintf("+%s:%s", w.branch, w.tracking()))
}

// fetch brings the branch tip into the local clone with depth 1 and
// returns it; the zero hash means the branch (or the whole repository)
// does not exist yet.
func (w *Writer) fetch(ctx context.Context, ra *source.RemoteAuth) (plumbing.Hash, error) {
	repo, err := w.openRepo(ra)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	w.uses++
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  ra.URL,
		RefSpecs:   []config.RefSpec{w.fetchSpec()},
		Depth:      1,
		Auth:       ra.Method,
		CABundle:   ra.CABundle,
		Tags:       git.NoTags,
		Force:      true,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, git.NoMatchingRefSpecError{}), errors.Is(err, transport.ErrEmptyRemoteRepository):
		// Deleted since the last fetch: forget the old tip too.
		if rerr := repo.Storer.RemoveReference(w.tracking()); rerr != nil {
			return plumbing.ZeroHash, fmt.Errorf("forget %s: %w", w.tracking(), rerr)
		}
		return plumbing.ZeroHash, nil
	default:
		return plumbing.ZeroHash, err
	}
	ref, err := repo.Reference(w.tracking(), true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read %s: %w", w.tracking(), err)
	}
	return ref.Hash(), nil
}

// remoteTip asks the remote where the branch points now (ls-remote), to
// tell "someone pushed first" from any other push failure.
func (w *Writer) remoteTip(ctx context.Context, ra *source.RemoteAuth) (plumbing.Hash, error) {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{ra.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: ra.Method, CABundle: ra.CABundle})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("ls-remote: %w", err)
	}
	for _, r := range refs {
		if r.Name() == w.branch {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, nil
}

// push sends commit to the branch, expecting the remote branch at parent
// (zero: absent). The refspec has no "+": go-git refuses anything but a
// fast-forward, RequireRemoteRefs refuses when the advertised tip is not
// the one we built on, and git's receive-pack updates the ref only if it
// still holds the old value it was sent, closing the last race window.
func (w *Writer) push(ctx context.Context, ra *source.RemoteAuth, parent, commit plumbing.Hash) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	opts := &git.PushOptions{
		RemoteName: "origin",
		RemoteURL:  ra.URL,
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", commit, w.branch))},
		Auth:       ra.Method,
		CABundle:   ra.CABundle,
	}
	if !parent.IsZero() {
		opts.RequireRemoteRefs = []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", parent, w.branch))}
	}
	err := w.repo.PushContext(ctx, opts)
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		// The remote already has exactly this commit: same parent, tree,
		// message, author and second. Nothing is lost.
		return nil
	}
	return err
}
